/**
 * `npm run bench:calls`: calls through the whole local system — Temporal dev server, worker, the
 * voice agent in offline mode, livekit-server and the phone-network simulator — to phones that
 * answer in different ways (tools/phone-sim/scenarios.json), measured on the simulator's clock:
 *   - answer → the agent's first voiced audio at the phone (median, max), every answered call;
 *   - for a person who says "Hello?": end of the hello → the agent's voice, and the longest silence
 *     the person hears after the hello before the greeting's body;
 *   - key press → outcome acknowledged (in the ledger, inside the Update), and → workflow closed;
 *   - answering-machine detection, scenario × decision, with for the machine: voicemail messages
 *     left, how long after the beep the message started, how much of the opening it heard;
 *   - where the time goes, from the agent's call timeline (ms since the answer at the phone).
 * With the load average beside them: on a shared machine latency figures move with it.
 *
 *   npm run bench:calls -- [calls=22] [--dispatch dial|answer]   (default dial)
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { loadavg } from 'node:os';
import { EncryptionCodec } from '../src/codec';
import { CallOutcome } from '../src/contracts';
import { waitForCall, type CallLogLine } from '../src/dev/livekit-stack';
import { startLocalSystem } from '../src/dev/local-system';
import { simulatedPatientZone, zoneInOfficeHours } from '../src/dev/office-hours';
import { DEFAULT_CALLING_RULES } from '../src/rules/calling-window';
import type { AgentDispatchTime } from '../src/telephony/livekit';

const args = process.argv.slice(2);
const flag = args.indexOf('--dispatch');
const dispatch: AgentDispatchTime = flag >= 0 && args[flag + 1] === 'answer' ? 'answer' : 'dial';
const calls = Number(args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--dispatch')[0] ?? 22);
if (!Number.isInteger(calls) || calls < 4) {
  process.stderr.write('bench:calls: the number of calls must be a whole number of at least 4 (one per scenario)\n');
  process.exit(2);
}

/** The phones called, in turn (tools/phone-sim/scenarios.json), and what each one is. */
const SCENARIOS = [
  { phone: '+12125550113', name: 'answers at once, silent, presses 1', expect: 'human|silence', outcome: CallOutcome.CONFIRMED, weight: 8 },
  { phone: '+12125550126', name: 'rings 2 s, says "Hello?", presses 1', expect: 'human', outcome: CallOutcome.CONFIRMED, weight: 7 },
  { phone: '+12125550111', name: 'voicemail greeting + beep', expect: 'machine', outcome: CallOutcome.VOICEMAIL_LEFT, weight: 4 },
  { phone: '+12125550127', name: 'talks at length (6.7 s), then presses 1', expect: 'human', outcome: undefined, weight: 3 },
] as const;

/** The call order: each scenario in proportion to its weight, interleaved. */
function plan(n: number): (typeof SCENARIOS)[number][] {
  const total = SCENARIOS.reduce((a, s) => a + s.weight, 0);
  const order: (typeof SCENARIOS)[number][] = [];
  const credit = SCENARIOS.map(() => 0);
  for (let i = 0; i < n; i += 1) {
    SCENARIOS.forEach((s, k) => (credit[k]! += s.weight / total));
    const k = credit.indexOf(Math.max(...credit));
    credit[k]! -= 1;
    order.push(SCENARIOS[k]!);
  }
  return order;
}

const stats = (xs: number[]) => {
  if (xs.length === 0) return 'no data';
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]} ms, max ${s.at(-1)} ms, min ${s[0]} ms (n=${s.length})`;
};

const ms = (iso: string | undefined) => Date.parse(iso ?? '');
type Spurt = [number, number];
const spurtsOf = (call: CallLogLine): Spurt[] => (call.heard?.spurts ?? []).map(([a, b]) => [ms(a), ms(b) + 20] as Spurt);
/** The first voiced audio at or after `t` (t itself while the agent is mid-word). */
const voiceFrom = (spurts: Spurt[], t: number) => spurts.find(([, end]) => end > t)?.[0] ?? NaN;
const voiceAfter = (spurts: Spurt[], t: number) => Math.max(voiceFrom(spurts, t), t);
/** Voiced ms heard within [from, to). */
const voicedWithin = (spurts: Spurt[], from: number, to = Infinity) => spurts.reduce((a, [s, e]) => a + Math.max(0, Math.min(e, to) - Math.max(s, from)), 0);
/** Groups of voiced audio after `t` separated by at least `gapMs` of silence. */
const groupsAfter = (spurts: Spurt[], t: number, gapMs: number) => {
  let groups = 0;
  let last = -Infinity;
  for (const [s, e] of spurts) {
    if (e <= t) continue;
    if (s - last >= gapMs) groups += 1;
    last = e;
  }
  return groups;
};

const timelines = new Map<string, { jobStartedAt: number; marks: Record<string, number> }>();
const decisions = new Map<string, string>();

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const system = await startLocalSystem({
    payloadEncryptionKey: EncryptionCodec.generateSetting('bench'),
    // One number called many times: the bench lifts the per-number caps (never do this in production).
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 1_000, maxCallsPerWeek: 1_000 },
    agentDispatch: dispatch,
    agentEnv: { AGENT_ANSWER_TIMEOUT_SECONDS: '3' },
    // The agent's log lines carry ids and times only: its call timeline and its decision.
    agentEcho: (line) => {
      if (!line.includes('call timeline') && !line.includes('"answerer"') && !line.includes('"heuristic"')) return;
      try {
        const t = JSON.parse(line.slice(line.indexOf('{'))) as { workflowId: string; jobStartedAt?: number; marks?: Record<string, number>; answerer?: string; heuristic?: string };
        if (t.marks && t.jobStartedAt) timelines.set(t.workflowId, { jobStartedAt: t.jobStartedAt, marks: t.marks });
        // The heuristic's own decision (a key pressed later makes the call a person's whatever it said).
        if (t.heuristic) decisions.set(t.workflowId, t.heuristic);
        else if (t.answerer && !decisions.has(t.workflowId)) decisions.set(t.workflowId, t.answerer);
      } catch {
        /* not a JSON line */
      }
    },
  });
  const { api, store } = system;
  await new Promise((r) => setTimeout(r, 3_000)); // let the agent's idle job process warm up
  const zone = zoneInOfficeHours();
  for (const s of SCENARIOS) {
    await api.recordConsent({ practiceId: 'bench', phone: s.phone, granted: true, source: 'bench' });
    // The override's zone alone counts: any zone in office hours now will do.
    await api.recordTimeZoneOverride(simulatedPatientZone('bench', s.phone, zone));
  }
  const firstAudio: number[] = [];
  const firstAudioBy = new Map<string, number[]>();
  const helloToVoice: number[] = [];
  const helloSilence: number[] = [];
  const keyToAck: number[] = [];
  const keyToClosed: number[] = [];
  const loads: number[] = [];
  const table = new Map<string, Map<string, number>>();
  const machine: { messages: number; afterBeepMs: number; openingMs: number; outcome: string }[] = [];
  const breakdown = new Map<string, number[]>();
  const order = plan(calls);
  for (const [i, s] of order.entries()) {
    loads.push(loadavg()[0]!);
    const { workflowId } = await api.startConfirmation({
      appointmentId: `bench-${i}-${Date.now().toString(36)}`,
      patientId: `pat-${i}`,
      patientName: 'Jordan Sample',
      phone: s.phone,
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
    const call = await waitForCall(system.stack!.callLogFile!, (l) => l.room === `${workflowId}-a1`, 30_000);
    await new Promise((r) => setTimeout(r, 300)); // the agent's last log lines
    const answered = ms(call.answeredAt);
    const spurts = spurtsOf(call);
    if (!call.heard?.firstVoicedAt) throw new Error(`call ${i} (${s.name}): the phone heard nothing; ${result.outcome}`);
    firstAudio.push(ms(call.heard.firstVoicedAt) - answered);
    firstAudioBy.set(s.name, [...(firstAudioBy.get(s.name) ?? []), firstAudio.at(-1)!]);
    const decided = decisions.get(workflowId) ?? '?';
    const row = table.get(s.name) ?? new Map<string, number>();
    row.set(decided, (row.get(decided) ?? 0) + 1);
    table.set(s.name, row);
    let line = `call ${i + 1}/${calls} ${s.name}: ${decided}, ${result.outcome}; first audio ${firstAudio.at(-1)} ms`;
    const hello = call.events?.find((e) => e.what === 'play' && e.arg === 'hello');
    if (s.phone === '+12125550126' && hello?.ms) {
      const helloEnd = ms(hello.at) + hello.ms;
      helloToVoice.push(voiceAfter(spurts, helloEnd) - helloEnd);
      // The longest silence after the hello until the end of the greeting (the first 6 s).
      let gap = 0;
      let t = helloEnd;
      for (const [a, b] of spurts) {
        if (b <= helloEnd || a > helloEnd + 6_000) continue;
        gap = Math.max(gap, a - t);
        t = Math.max(t, b);
      }
      helloSilence.push(Math.max(0, gap));
      line += `; hello end → voice ${helloToVoice.at(-1)} ms, longest silence after it ${helloSilence.at(-1)} ms`;
    }
    if (s.phone === '+12125550111') {
      const greeting = call.events?.find((e) => e.what === 'play' && e.arg === 'voicemail-greeting');
      const beepEnd = ms(greeting?.at) + (greeting?.ms ?? NaN);
      const m = {
        messages: groupsAfter(spurts, beepEnd, 2_000),
        afterBeepMs: voiceFrom(spurts, beepEnd) - beepEnd,
        openingMs: voicedWithin(spurts, answered, beepEnd),
        outcome: result.outcome,
      };
      machine.push(m);
      line += `; messages after the beep ${m.messages}, starting ${m.afterBeepMs} ms after it; heard during the greeting ${m.openingMs} ms`;
    }
    const pressed = ms(call.events?.find((e) => e.what === 'press')?.at);
    if (result.outcome === CallOutcome.CONFIRMED && !Number.isNaN(pressed)) {
      const { rows } = await store.sql.query<{ outcome_at: Date | string }>('SELECT outcome_at FROM attempt_ledger WHERE workflow_id = $1 AND attempt = 1', [workflowId]);
      keyToAck.push(new Date(rows[0]!.outcome_at).getTime() - pressed);
      keyToClosed.push(closedAt - pressed);
    }
    const tl = timelines.get(workflowId);
    if (tl) {
      const since = (k: string) => (tl.marks[k] === undefined ? undefined : tl.jobStartedAt + tl.marks[k]! - answered);
      const parts: [string, number | undefined][] = [['job started', tl.jobStartedAt - answered], ...Object.keys(tl.marks).map((k) => [k, since(k)] as [string, number | undefined])];
      for (const [k, v] of parts) if (v !== undefined) breakdown.set(k, [...(breakdown.get(k) ?? []), v]);
      line += `\n    since the answer: ${parts.map(([k, v]) => `${k} ${v}`).join(', ')}, phone heard ${firstAudio.at(-1)}`;
    }
    process.stdout.write(`${line}\n`);
  }
  const load = [...loads].sort((a, b) => a - b);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`\n${calls} calls, offline agent (keypad, espeak-ng, Silero), agent dispatched at the ${dispatch}; load average (1 min) during the run: median ${load[Math.floor(load.length / 2)]!.toFixed(1)}, max ${load.at(-1)!.toFixed(1)} on ${(await import('node:os')).cpus().length} cores`);
  out(`answer → agent's first audio at the phone, every answered call: ${stats(firstAudio)}`);
  for (const [name, xs] of firstAudioBy) out(`  ${name.padEnd(42)} ${stats(xs)}`);
  out(`"Hello?" end → agent's voice at the phone:         ${stats(helloToVoice)}`);
  out(`"Hello?" end → longest silence heard in the next 6 s: ${stats(helloSilence)}`);
  out(`key press → outcome acknowledged:                  ${stats(keyToAck)}`);
  out(`key press → workflow completed:                    ${stats(keyToClosed)}`);
  out('\nwhere the time goes (ms after the answer at the phone, median):');
  for (const [k, v] of breakdown) out(`  ${k.padEnd(16)} ${[...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]}`);
  out('\nanswering-machine detection (scenario × the heuristic\'s decision):');
  const kinds = ['human', 'silence', 'machine', '?'];
  out(`  ${'scenario'.padEnd(42)} ${kinds.map((k) => k.padStart(8)).join('')}`);
  for (const [name, row] of table) out(`  ${name.padEnd(42)} ${kinds.map((k) => String(row.get(k) ?? 0).padStart(8)).join('')}`);
  if (machine.length > 0) {
    out(`voicemail: ${machine.length} machine calls; messages left after the beep: ${machine.map((m) => m.messages).join(', ')}; outcomes: ${machine.map((m) => m.outcome).join(', ')}`);
    out(`  message start after the end of the beep: ${stats(machine.map((m) => m.afterBeepMs))}`);
    out(`  agent audio heard during the machine's greeting (the opening): ${stats(machine.map((m) => m.openingMs))}`);
  }
  await system.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:calls failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
