/**
 * `npm run bench:calls`: calls through the whole local system — Temporal dev server, worker, the
 * voice agent in offline mode, livekit-server and the phone-network simulator — to a phone that
 * presses 1 once the agent's greeting starts. Prints, over N calls (median and max):
 *   - answer → the agent's first audio frame at the phone (the simulator's clock);
 *   - key press → outcome acknowledged (recorded in the ledger inside the Update);
 *   - key press → workflow closed (after the agent's goodbye and hang-up).
 *
 *   npm run bench:calls -- [calls=20]
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { EncryptionCodec } from '../src/codec';
import { CallOutcome } from '../src/contracts';
import { waitForCall } from '../src/dev/livekit-stack';
import { startLocalSystem } from '../src/dev/local-system';
import { simulatedPatientZone, zoneInOfficeHours } from '../src/dev/office-hours';
import { DEFAULT_CALLING_RULES } from '../src/rules/calling-window';

const calls = Number(process.argv[2] ?? 20);
const PHONE = '+12125550113'; // presses 1 1.5 s after the agent starts speaking

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]} ms, max ${s.at(-1)} ms, min ${s[0]} ms`;
};

const timelines = new Map<string, { jobStartedAt: number; marks: Record<string, number> }>();

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const system = await startLocalSystem({
    payloadEncryptionKey: EncryptionCodec.generateSetting('bench'),
    // One number called many times: the bench lifts the per-number caps (never do this in production).
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 1_000, maxCallsPerWeek: 1_000 },
    agentEcho: (line) => {
      if (!line.includes('call timeline')) return;
      try {
        const t = JSON.parse(line.slice(line.indexOf('{'))) as { workflowId: string; jobStartedAt: number; marks: Record<string, number> };
        timelines.set(t.workflowId, t);
      } catch {
        /* not JSON */
      }
    },
  });
  const { api, store } = system;
  await new Promise((r) => setTimeout(r, 3_000)); // let the agent's idle job process warm up
  await api.recordConsent({ practiceId: 'bench', phone: PHONE, granted: true, source: 'bench' });
  // The override's zone alone counts: any zone in office hours now will do.
  await api.recordTimeZoneOverride(simulatedPatientZone('bench', PHONE, zoneInOfficeHours()));
  const firstAudio: number[] = [];
  const keyToAck: number[] = [];
  const keyToClosed: number[] = [];
  const zone = zoneInOfficeHours();
  for (let i = 0; i < calls; i += 1) {
    const { workflowId } = await api.startConfirmation({
      appointmentId: `bench-${i}-${Date.now().toString(36)}`,
      patientId: `pat-${i}`,
      patientName: 'Jordan Sample',
      phone: PHONE,
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 10, minute: 0 }).toISO()!,
      practiceId: 'bench',
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
      policy: { maxAttempts: 1 },
    });
    const result = await api.result(workflowId);
    const closedAt = (await system.client.workflow.getHandle(workflowId).describe()).closeTime!.getTime();
    const call = await waitForCall(system.stack!.callLogFile!, (l) => l.room === `${workflowId}-a1`);
    const { rows } = await store.sql.query<{ outcome_at: Date | string }>('SELECT outcome_at FROM attempt_ledger WHERE workflow_id = $1 AND attempt = 1', [workflowId]);
    const pressed = Date.parse(call.events?.find((e) => e.what === 'press')?.at ?? '');
    if (result.outcome !== CallOutcome.CONFIRMED || !call.heard?.firstVoicedAt || Number.isNaN(pressed)) {
      throw new Error(`call ${i}: ${result.outcome}, ${JSON.stringify(call)}`);
    }
    firstAudio.push(Date.parse(call.heard.firstVoicedAt) - Date.parse(call.answeredAt!));
    keyToAck.push(new Date(rows[0]!.outcome_at).getTime() - pressed);
    keyToClosed.push(closedAt - pressed);
    await new Promise((r) => setTimeout(r, 300));
    const tl = timelines.get(workflowId);
    if (tl) {
      const answered = Date.parse(call.answeredAt!);
      const rel = Object.entries(tl.marks).map(([k, v]) => `${k} ${tl.jobStartedAt + v - answered}`);
      process.stdout.write(`  since answer: job ${tl.jobStartedAt - answered}, ${rel.join(', ')}, phone heard ${firstAudio.at(-1)}\n`);
    }
    process.stdout.write(`call ${i + 1}/${calls}: first audio ${firstAudio.at(-1)} ms, key → ack ${keyToAck.at(-1)} ms, key → closed ${keyToClosed.at(-1)} ms\n`);
  }
  process.stdout.write(`\n${calls} calls, offline agent (keypad, espeak-ng, Silero), phone presses 1 1.5 s after the greeting starts\n`);
  process.stdout.write(`answer → agent's first audio frame:  ${stats(firstAudio)}\n`);
  process.stdout.write(`key press → outcome acknowledged:   ${stats(keyToAck)}\n`);
  process.stdout.write(`key press → workflow completed:     ${stats(keyToClosed)}\n`);
  await system.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:calls failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
