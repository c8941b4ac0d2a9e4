/**
 * `npm run bench`: confirmations end to end on the real Temporal dev server (embedded PGlite,
 * scripted phones), printing the numbers the project tracks: history events per confirmation
 * (goal ≤ 20 on the happy path), start-to-result latency, throughput, and worker memory.
 *
 *   npm run bench -- [count=60] [concurrency=20]
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { ConfirmationClient } from '../src/client';
import { createDataConverter, EncryptionCodec } from '../src/codec';
import { CallOutcome } from '../src/contracts';
import { simulatedPatientZone, zoneInOfficeHours } from '../src/dev/office-hours';
import { ScriptedTelephony } from '../src/dev/scripted-telephony';
import { startTemporalDevServer } from '../src/dev/temporal-dev-server';
import { createLogger } from '../src/logger';
import { DEFAULT_CALLING_RULES } from '../src/rules/calling-window';
import { createStore } from '../src/store';
import { createConfirmationWorker } from '../src/worker-factory';

const count = Math.min(Number(process.argv[2] ?? 60), 100); // 100 fictional numbers: one call each (daily cap)
const concurrency = Number(process.argv[3] ?? 20);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const key = EncryptionCodec.generateSetting('bench');
  const server = await startTemporalDevServer();
  const store = await createStore({});
  const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: createDataConverter(key) });
  const api = new ConfirmationClient({ client, store, taskQueue: 'bench' });
  // The agent reports 200 ms after the answer, as a real agent does (after the dial has returned).
  const phones = new ScriptedTelephony(client, { reportAfterAnswerMs: 200 });
  const worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: server.address }),
    taskQueue: 'bench',
    payloadEncryptionKey: key,
    store,
    telephony: phones,
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '21:00' },
    logger: createLogger('silent'),
  });
  const running = worker.run();
  const zone = zoneInOfficeHours(9, 20);

  const latencies: number[] = [];
  const events: number[] = [];
  const started = Date.now();
  let next = 0;
  const one = async (i: number) => {
    const phone = `+1212555${String(100 + i).padStart(4, '0')}`;
    await api.recordConsent({ practiceId: 'bench', phone, granted: true, source: 'bench' });
    await api.recordTimeZoneOverride(simulatedPatientZone('bench', phone, zone));
    phones.script(phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
    const t0 = Date.now();
    const { workflowId } = await api.startConfirmation({
      appointmentId: `bench-${started}-${i}`,
      patientId: `p-${i}`,
      patientName: 'Bench Patient',
      phone,
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).toISO(),
      practiceId: 'bench',
      practiceName: 'Bench Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Bench',
      reason: 'cleaning',
    });
    const result = await api.result(workflowId);
    if (result.outcome !== CallOutcome.CONFIRMED) throw new Error(`unexpected outcome ${result.outcome}`);
    latencies.push(Date.now() - t0);
    events.push((await client.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0);
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await one(next++);
    }),
  );
  const elapsedS = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const rssMb = process.memoryUsage().rss / 2 ** 20;

  process.stdout.write(
    [
      `confirmations: ${count} (concurrency ${concurrency}), all CONFIRMED, on the Temporal dev server with PGlite`,
      `history events per happy-path confirmation: min ${Math.min(...events)}, max ${Math.max(...events)} (goal <= 20)`,
      `start -> result latency: p50 ${pct(latencies, 50)} ms, p95 ${pct(latencies, 95)} ms, max ${latencies.at(-1)} ms`,
      `throughput: ${(count / elapsedS).toFixed(1)} confirmations/s over ${elapsedS.toFixed(1)} s`,
      `process RSS after run (worker + client + PGlite): ${rssMb.toFixed(0)} MiB`,
    ].join('\n') + '\n',
  );
  worker.shutdown();
  await running;
  await store.close();
  await server.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
