/**
 * The whole system with nothing faked but the phone network: the Temporal dev server (and, for the
 * production-relevant cases, Temporal's own server on PostgreSQL), the worker
 * (PGlite), the voice-agent worker in its own process (offline mode: keypad, espeak-ng, Silero),
 * livekit-server with Redis, and the phone-network simulator as livekit-server's SIP service.
 */
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome, ConsentState, Phase, type CallPolicy, type ConfirmationRequest } from '../../src/contracts';
import { readCallLog, waitForCall, type CallLogLine } from '../../src/dev/livekit-stack';
import { startLocalSystem, type LocalSystem } from '../../src/dev/local-system';
import type { TemporalServerKind } from '../../src/dev/temporal-server';
import { simulatedPatientZone } from '../../src/dev/office-hours';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { e2eRequest } from '../helpers/fixtures';
import { visibilityRows } from '../helpers/temporal-visibility';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const FRONT_DESK = '+13125550199';

/** An RFC 3339 time with up to 9 fraction digits (the simulator's call log) as ns since the epoch. */
function stampNanos(stamp: string): bigint {
  const m = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(stamp);
  if (!m) throw new Error(`not an RFC 3339 UTC time: ${stamp}`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

let system: LocalSystem;
let rooms: RoomServiceClient;

async function start(temporalServer: TemporalServerKind): Promise<void> {
  system = await startLocalSystem({
    temporalServer,
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    taskQueue: 'full-stack',
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 5 },
    // The phone answers 1.5 s after the agent's question: 4 s of quiet before a re-prompt leaves a
    // loaded host's agent (its voice detection running behind the line) room to hear the answer first.
    agentEnv: { AGENT_ANSWER_TIMEOUT_SECONDS: '4', STAFF_TRANSFER_NUMBER: FRONT_DESK },
    // Dispatched at the dial (the default): the agent joins while the phone rings, and speaks at the answer.
  });
  rooms = new RoomServiceClient(system.stack!.url.replace('ws', 'http'), system.stack!.apiKey, system.stack!.apiSecret);
}

let n = 0;
async function confirm(phone: string, policy: Partial<CallPolicy> = {}): Promise<{ workflowId: string; request: ConfirmationRequest }> {
  n += 1;
  const request = e2eRequest(`fs-${n}`, phone, policy);
  await system.api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'full-stack test' });
  await system.api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, request.patientTimeZone));
  const { workflowId } = await system.api.startConfirmation(request);
  return { workflowId, request };
}

const answeredCallOf = (workflowId: string, attempt = 1) => waitForCall(system.stack!.callLogFile!, (l) => l.room === `${workflowId}-a${attempt}`, 30_000);

/** What the phone heard, as runs of the agent's voice [start, end] in ms (end: the last frame's arrival + 20 ms). */
const spurtsOf = (call: CallLogLine) => (call.heard?.spurts ?? []).map(([a, b]) => [Date.parse(a), Date.parse(b) + 20] as const);
/** When a clip the phone played ended. */
const clipEnd = (call: CallLogLine, clip: string) => {
  const e = call.events!.find((x) => x.what === 'play' && x.arg === clip)!;
  return Date.parse(e.at) + e.ms!;
};

// The production-relevant cases (a confirmation through LiveKit, the simulator and the agent; an
// opt-out across confirmations) also run on Temporal's own server on PostgreSQL, the production shape.
const SERVERS: { server: TemporalServerKind; name: string }[] = [
  { server: 'dev', name: 'the dev server' },
  { server: 'postgres', name: 'the Temporal server on PostgreSQL' },
];

for (const { server, name } of SERVERS) describe(`the whole system on ${name}, with the phone network simulated`, () => {
  beforeAll(() => start(server));
  afterAll(async () => {
    await system?.stop();
  });

  it('the patient presses 1: CONFIRMED, written back, the room deleted, and the phone heard the greeting after answering', async () => {
    const { workflowId, request } = await confirm('+12125550113');
    const result = await system.api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.CONFIRMED);
    expect(await system.store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
    expect(await rooms.listRooms([`${workflowId}-a1`])).toHaveLength(0);
    const call = await answeredCallOf(workflowId);
    expect(call.ended).toBe('hung up by the agent'); // after its goodbye
    expect(call.heard!.voicedBeforeAnswerMs).toBe(0);
    expect(call.heard!.voicedMs).toBeGreaterThan(1_000);
    // At the simulator's own precision (ns): the first frame after the answer may arrive within the
    // answer's millisecond (the agent's audio already on its way), which Date.parse cannot tell apart.
    expect(stampNanos(call.heard!.firstVoicedAt!)).toBeGreaterThan(stampNanos(call.answeredAt!));
    expect(call.events?.map((e) => [e.what, e.arg])).toEqual([['press', '1']]);
    // On the production server, the confirmation is in Temporal's own PostgreSQL (SQL visibility).
    if (server === 'postgres') expect(await visibilityRows(system.temporal.postgres!.url, workflowId)).toBe(1);
    process.stdout.write(
      `answer → first agent audio ${Date.parse(call.heard!.firstVoicedAt!) - Date.parse(call.answeredAt!)} ms; ` +
        `key → workflow closed ${Date.parse(result.decidedAt) - Date.parse(call.events![0]!.at)} ms\n`,
    );
  });

  it('the patient presses 9: OPTED_OUT, the number is on the do-not-call list, and a second confirmation for it never dials', async () => {
    const phone = '+12125550116';
    const { workflowId, request } = await confirm(phone);
    expect((await system.api.result(workflowId)).outcome).toBe(CallOutcome.OPTED_OUT);
    expect(await system.store.consentState(request.practiceId, phone)).toBe(ConsentState.DO_NOT_CALL);
    await answeredCallOf(workflowId);
    const second = await confirm(phone);
    const result = await system.api.result(second.workflowId);
    expect(result.outcome).toBe(CallOutcome.OPTED_OUT);
    expect(result.attempts).toHaveLength(0);
    expect(readCallLog(system.stack!.callLogFile!).filter((l) => l.to === phone)).toHaveLength(1);
  });

  // The other outcomes exercise the agent and the simulator more than the server: on the dev server
  // only (not registered at all on the other, rather than skipped).
  if (server === 'dev') describe('more outcomes', () => {
    it('the phone stays silent: re-prompts, then NO_OUTCOME, and the retry is scheduled', async () => {
      const { workflowId, request } = await confirm('+12125550101', { maxAttempts: 2, initialBackoffSeconds: 3_600 });
      let status = await system.api.getStatus(workflowId);
      for (let i = 0; i < 900 && status.lastOutcome === undefined; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        status = await system.api.getStatus(workflowId);
      }
      expect(status.lastOutcome).toBe(CallOutcome.NO_OUTCOME);
      expect(status.phase).toBe(Phase.WAITING_FOR_WINDOW);
      expect(Date.parse(status.nextCallAt!) - Date.now()).toBeGreaterThan(3_000_000);
      const call = await answeredCallOf(workflowId);
      expect(call.ended).toBe('hung up by the agent');
      expect(call.heard!.voicedMs).toBeGreaterThan(10_000); // greeting, two re-prompts, goodbye
      await system.api.cancel(request.practiceId, request.appointmentId);
    });

    it('voicemail: the opening stopped while the machine talks, then exactly one message after the beep, of at most 60 s, VOICEMAIL_LEFT', async () => {
      const { workflowId } = await confirm('+12125550111');
      const result = await system.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.VOICEMAIL_LEFT);
      const call = await answeredCallOf(workflowId);
      const calls = readCallLog(system.stack!.callLogFile!).filter((l) => l.room.startsWith(workflowId));
      expect(calls).toHaveLength(1);
      const beepEnd = clipEnd(call, 'voicemail-greeting'); // the greeting, then the beep
      const spurts = spurtsOf(call);
      // During the greeting: the opening at most (about 2.3 s of voice), never the rest of the greeting.
      const beforeBeep = spurts.filter(([, end]) => end <= beepEnd);
      // (2.3–3.1 s as the phone hears it, loaded or not; the rest of the greeting is several seconds more.)
      expect(beforeBeep.reduce((a, [s, e]) => a + e - s, 0)).toBeLessThan(5_000);
      // … and over before the beep (stopped by the long greeting, or finished; the beep is ~8.7 s in).
      expect(beforeBeep.at(-1)![1]).toBeLessThan(beepEnd);
      expect(spurts.some(([s, e]) => s < beepEnd && e > beepEnd)).toBe(false); // nothing spans the beep
      // After the beep: one message (no gap of 2 s or more in it), starting after the beep, under 60 s.
      const after = spurts.filter(([s]) => s >= beepEnd);
      expect(after.length).toBeGreaterThan(0);
      expect(after[0]![0]).toBeGreaterThan(beepEnd);
      // (Gaps between its sentences stretch on a loaded machine.)
      for (let i = 1; i < after.length; i += 1) expect(after[i]![0] - after[i - 1]![1]).toBeLessThan(5_000);
      expect(after.reduce((a, [s, e]) => a + e - s, 0)).toBeGreaterThan(5_000);
      expect(after.at(-1)![1] - after[0]![0]).toBeLessThanOrEqual(60_000);
      expect(call.ended).toBe('hung up by the agent');
    });

    it('first words: the agent speaks while detection listens; a person\'s "Hello?" is answered with no dead air', async () => {
      const { workflowId } = await confirm('+12125550126'); // rings 2 s, says "Hello?" 1 s after answering, presses 1 later
      expect((await system.api.result(workflowId)).outcome).toBe(CallOutcome.CONFIRMED);
      const call = await answeredCallOf(workflowId);
      const answered = Date.parse(call.answeredAt!);
      expect(call.heard!.voicedBeforeAnswerMs).toBe(0);
      // The opening plays while detection listens: the agent speaks before the old 1.2 s listening
      // window would even have ended. (The latency goals — ≤ 400 ms median — are measured by
      // `npm run bench:calls`; this test keeps a margin for a loaded CI machine.)
      expect(Date.parse(call.heard!.firstVoicedAt!) - answered).toBeLessThanOrEqual(2_000);
      // After the hello, the agent's voice soon, and no long silence in the next 5 s (the opening
      // runs on into the rest of the greeting).
      const helloEnd = clipEnd(call, 'hello');
      const spurts = spurtsOf(call).filter(([s, e]) => e > helloEnd && s < helloEnd + 5_000);
      expect(Math.max(spurts[0]![0], helloEnd) - helloEnd).toBeLessThanOrEqual(1_500);
      for (let i = 1; i < spurts.length; i += 1) expect(spurts[i]![0] - spurts[i - 1]![1]).toBeLessThan(2_000);
      process.stdout.write(`answer → first agent audio ${Date.parse(call.heard!.firstVoicedAt!) - answered} ms; hello end → agent voice ${Math.max(spurts[0]![0], helloEnd) - helloEnd} ms\n`);
    });

    // Spoken answers, offline: the phone says hello, waits for the agent's question to end (1.5 s of
    // quiet, as a person does: the simulator's agent-quiet cue), then says its answer — a clip in a
    // flite voice on a telephone band with noise (scripts/phone-audio.sh). PocketSphinx hears it and
    // the intent matcher calls the same tool the cloud LLM would.
    describe('spoken answers (PocketSphinx and the intent matcher)', () => {
      /** The phone's events, and the agent's voice runs after `from` (ms). */
      const events = (call: CallLogLine) => call.events!.map((e) => [e.what, e.arg]);
      const spokeBetween = (call: CallLogLine, from: number, to: number) => spurtsOf(call).some(([s, e]) => e > from && s < to);

      it('"Yes, I\'ll be there." after the question: CONFIRMED, with no key pressed', async () => {
        const { workflowId, request } = await confirm('+12125550128');
        const result = await system.api.result(workflowId);
        expect(result.outcome).toBe(CallOutcome.CONFIRMED);
        expect(await system.store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
        const call = await answeredCallOf(workflowId);
        expect(events(call)).toEqual([['play', 'hello'], ['play', 'answer-yes']]);
        const answerEnd = clipEnd(call, 'answer-yes');
        const answerStart = answerEnd - call.events![1]!.ms!;
        // The agent let the patient speak (no re-prompt over the answer), then acknowledged it and said goodbye.
        expect(spokeBetween(call, answerStart, answerEnd)).toBe(false);
        const reply = spurtsOf(call).find(([s]) => s >= answerEnd);
        expect(reply).toBeDefined();
        expect(call.ended).toBe('hung up by the agent');
        process.stdout.write(`spoken yes: end of the answer → the agent's reply ${reply![0] - answerEnd} ms\n`);
      });

      it('"I need to reschedule. Tuesday morning would be better.": RESCHEDULE_REQUESTED, with the preference in the patient\'s words', async () => {
        const { workflowId } = await confirm('+12125550129');
        const result = await system.api.result(workflowId);
        expect(result.outcome).toBe(CallOutcome.RESCHEDULE_REQUESTED);
        expect(result.detail?.reschedulePreference).toMatch(/reschedule.*morning/);
        const call = await answeredCallOf(workflowId);
        expect(events(call)).toEqual([['play', 'hello'], ['play', 'answer-reschedule']]);
        expect(call.ended).toBe('hung up by the agent');
      });

      it('an unclear answer ("Um, let me think.") is never taken for one: the agent asks again, and the key pressed then decides', async () => {
        const { workflowId } = await confirm('+12125550130');
        const result = await system.api.result(workflowId);
        expect(result.outcome).toBe(CallOutcome.CONFIRMED);
        expect(result.attempts).toHaveLength(1);
        const call = await answeredCallOf(workflowId);
        expect(events(call)).toEqual([['play', 'hello'], ['play', 'answer-unclear'], ['press', '1']]);
        const unclearEnd = clipEnd(call, 'answer-unclear');
        const pressedAt = Date.parse(call.events![2]!.at);
        // Nothing decided on the unclear answer: the outcome came from the key.
        expect(Date.parse(result.decidedAt)).toBeGreaterThan(pressedAt);
        expect(spokeBetween(call, unclearEnd, pressedAt)).toBe(true); // the re-prompt
      });
    });

    it('the patient presses 0: TRANSFERRED, and the carrier takes the call to the front desk', async () => {
      const { workflowId } = await confirm('+12125550117');
      expect((await system.api.result(workflowId)).outcome).toBe(CallOutcome.TRANSFERRED);
      const call = await answeredCallOf(workflowId);
      expect(call.ended).toBe(`transferred to tel:${FRONT_DESK}`);
    });
  });
});
