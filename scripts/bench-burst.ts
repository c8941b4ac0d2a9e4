/**
 * `npm run bench:burst`: N confirmations started at once against a trunk of C channels and two
 * agent workers, through the whole local system — Temporal dev server, worker with the channel gate,
 * livekit-server with the phone-network simulator, real offline agent workers reporting their
 * capacity. A mix of phones: keypad answers (1, 2, 3), voicemail, busy, unavailable, rung out.
 * Prints:
 *   - served: answered calls in which the agent spoke (the phone heard it), and reported an outcome;
 *   - answer → agent in the room (its job connected) and answer → the agent's first audio at the
 *     phone, p50 / p95 / max;
 *   - agent job requests per INVITE (every agent worker's "received job request");
 *   - most calls up at once (vs C) and the agents' reported capacity.
 *
 *   npm run bench:burst -- [N=24] [C=4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { EncryptionCodec } from '../src/codec';
import { CallOutcome } from '../src/contracts';
import { maxConcurrentCalls, readCallLog } from '../src/dev/livekit-stack';
import { startLocalSystem } from '../src/dev/local-system';
import { simulatedPatientZone, zoneInOfficeHours } from '../src/dev/office-hours';
import { agentCapacity } from '../src/pacing';
import { DEFAULT_CALLING_RULES } from '../src/rules/calling-window';

const N = Number(process.argv[2] ?? 24);
const C = Number(process.argv[3] ?? 4);
const WORKERS = 2;
/** Presses 1 / busy / presses 2 / rings out / presses 1 / voicemail / presses 3 / unavailable. */
const PHONES = ['+12125550113', '+12125550102', '+12125550114', '+12125550107', '+12125550113', '+12125550111', '+12125550115', '+12125550103'];
const SERVED = new Set<string>([CallOutcome.CONFIRMED, CallOutcome.CANCELLED, CallOutcome.RESCHEDULE_REQUESTED, CallOutcome.VOICEMAIL_LEFT]);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const dist = (xs: number[]) => (xs.length === 0 ? 'none' : `p50 ${pct(xs, 50)} ms, p95 ${pct(xs, 95)} ms, max ${Math.max(...xs)} ms (n=${xs.length})`);

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dir = mkdtempSync(join(tmpdir(), 'bench-burst-'));
  const agentLines: string[] = [];
  const perWorker = Math.ceil(C / WORKERS);
  const system = await startLocalSystem({
    payloadEncryptionKey: EncryptionCodec.generateSetting('bench'),
    // Numbers are called several times: the bench lifts the per-number caps (never in production).
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 1_000, maxCallsPerWeek: 1_000 },
    dataDir: join(dir, 'pglite'),
    agentCapacity: true,
    agentWorkers: WORKERS,
    agentProcesses: perWorker,
    agentEnv: { AGENT_MAX_CALLS: String(perWorker) },
    trunkLimits: { channels: C, callsPerSecond: 5 },
    agentEcho: (line) => agentLines.push(line),
  });
  const { api, store } = system;
  try {
    for (const phone of new Set(PHONES)) await api.recordConsent({ practiceId: 'bench', phone, granted: true, source: 'bench' });
    const zone = zoneInOfficeHours();
    for (const phone of new Set(PHONES)) await api.recordTimeZoneOverride(simulatedPatientZone('bench', phone, zone));
    const run = Date.now().toString(36);
    const capacity: number[] = [];
    const sampler = setInterval(() => void agentCapacity(store.sql, 'appointment-confirmer').then((c) => capacity.push(c.capacity)), 1_000);
    const t0 = Date.now();
    const ids = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        api
          .startConfirmation({
            appointmentId: `burst-${run}-${i}`,
            patientId: `pat-${i}`,
            patientName: 'Jordan Sample',
            phone: PHONES[i % PHONES.length]!,
            patientTimeZone: zone,
            appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 10, minute: 0 }).toISO()!,
            practiceId: 'bench',
            practiceName: 'Bright Smiles Dental',
            practiceCallbackNumber: '+13125550100',
            provider: 'Dr. Rivera',
            reason: 'cleaning',
            policy: { maxAttempts: 1, ringingTimeoutSeconds: 15 },
          })
          .then((r) => r.workflowId),
      ),
    );
    const outcomes = await Promise.all(ids.map((id) => api.result(id).then((r) => r.outcome)));
    const wallMs = Date.now() - t0;
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 1_500)); // the last call log lines

    const calls = readCallLog(system.stack!.callLogFile!).filter((l) => ids.some((id) => l.room.startsWith(`${id}-a`)));
    const answered = calls.filter((l) => l.outcome === 'answered');
    // When each call's agent job connected to the room (the agent's own log: ids only).
    const agentTimes = (what: string) => {
      const at = new Map<string, number>();
      for (const line of agentLines) {
        if (!line.includes(what)) continue;
        try {
          const j = JSON.parse(line.slice(line.indexOf('{'))) as { workflowId?: string; attempt?: number; time?: number | string };
          if (j.workflowId && j.time !== undefined) at.set(`${j.workflowId}-a${j.attempt}`, typeof j.time === 'number' ? j.time : Date.parse(j.time));
        } catch {
          // not a JSON line
        }
      }
      return at;
    };
    const started = agentTimes('job started');
    const joined = agentTimes('connected to the room');
    const toJob: number[] = [];
    const toAgent: number[] = [];
    const toAudio: number[] = [];
    let heard = 0;
    for (const c of answered) {
      const at = Date.parse(c.answeredAt!);
      const j = joined.get(c.room);
      if (j !== undefined) toAgent.push(Math.max(0, j - at));
      const s = started.get(c.room);
      if (s !== undefined) toJob.push(Math.max(0, s - at));
      if (c.heard?.firstVoicedAt) {
        heard += 1;
        // A machine's greeting and beep come first by design: first audio is timed on people only.
        if (!c.to.endsWith('0111')) toAudio.push(Date.parse(c.heard.firstVoicedAt) - at);
      }
    }
    const servedOutcomes = outcomes.filter((o) => SERVED.has(o)).length;
    const jobRequests = agentLines.filter((l) => l.includes('received job request')).length;
    const refused = agentLines.filter((l) => l.includes('job refused')).length;
    const maxUp = maxConcurrentCalls(calls);
    const count = new Map<string, number>();
    for (const o of outcomes) count.set(o, (count.get(o) ?? 0) + 1);

    const out = [
      '',
      `${N} confirmations at once, ${C} channels, ${WORKERS} agent workers (${perWorker} calls and ${perWorker} warm job processes each), offline agent; wall ${(wallMs / 1000).toFixed(1)} s`,
      `outcomes: ${[...count].map(([o, k]) => `${o} ${k}`).join(', ')}`,
      `INVITEs ${calls.length}, answered ${answered.length}`,
      `served: ${heard}/${answered.length} answered calls heard the agent (${((100 * heard) / Math.max(1, answered.length)).toFixed(0)}%); ${servedOutcomes} reported an outcome`,
      `answer → agent job started:         ${dist(toJob)}`,
      `answer → agent in the room:         ${dist(toAgent)}`,
      `answer → agent's first audio frame (people; includes the 1.2 s answering-machine listening window): ${dist(toAudio)}`,
      `agent job requests ${jobRequests} for ${calls.length} INVITEs (${(jobRequests / Math.max(1, calls.length)).toFixed(2)} per INVITE; ${(jobRequests / Math.max(1, answered.length)).toFixed(2)} per answered call); refused by a worker ${refused}`,
      `most calls up at once ${maxUp} (channels ${C}); agent capacity reported: min ${Math.min(...capacity)}, max ${Math.max(...capacity)}`,
      '',
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await system.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:burst failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
