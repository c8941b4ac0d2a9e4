/**
 * A seeded model of the phone network behind the production `Telephony` port, for `campaign
 * forecast`. Each dial draws what happens from the model — busy, rings out, answered by the patient,
 * answered by voicemail — with rates by the patient's local hour, a ringing time, a call length, and
 * (answered) what the patient tells the agent. The agent's verdict is played as ScriptedTelephony
 * does: the `outcome` Update through the Temporal client, before the line goes down.
 *
 * Time: every call is played `speed` times faster than modelled (a 60 s call holds its channel for
 * 60 / speed s). While any activity is in flight, Temporal's time-skipping test server does not
 * skip time, so its clock runs with the wall clock: the call holds its channel for that long in
 * test-server time too. The modelled (uncompressed) length of every call is recorded for the
 * report. See the README ("Forecast before launch").
 *
 * Draws depend only on (seed, workflow id, attempt) and the local hour of the dial, never on the
 * order in which concurrent calls arrive: the same seed gives the same calls.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { DateTime } from 'luxon';
import { z } from 'zod';
import {
  CallCheckState,
  CallOutcome,
  DialFailureType,
  outcomeUpdate,
  SIP_PARTICIPANT_IDENTITY,
  type CallCheckResult,
  type DialInput,
  type DialResult,
} from '../../contracts';
import { DialError, type Telephony } from '../../ports';
import { ValidationError, type FieldProblem } from '../../validation';

// ---------------------------------------------------------------------------------------------
// The model and its defaults
// ---------------------------------------------------------------------------------------------

/** What happens when the phone rings; the four rates add up to 1. */
export interface PickupRates {
  /** The patient answers. */
  answer: number;
  /** Busy (SIP 486). */
  busy: number;
  /** Rings until the ringing timeout (NO_ANSWER). */
  noAnswer: number;
  /** Voicemail answers. */
  voicemail: number;
}

/** A length in seconds: triangular between `min` and `max`, most often `mode`. */
export interface Duration {
  min: number;
  mode: number;
  max: number;
}

/** What an answering patient tells the agent; the rates add up to 1. */
export interface VerdictRates {
  confirm: number;
  cancel: number;
  reschedule: number;
  /** The agent gets no verdict (the patient hangs up, or the talk goes nowhere): NO_OUTCOME, retried. */
  noVerdict: number;
  optOut: number;
  wrongNumber: number;
}

/** The phone-network model of a forecast (JSON file: any subset; the rest from {@link DEFAULT_PHONE_MODEL}). */
export interface PhoneModel {
  /** Pickup rates for hours not listed in `byLocalHour`. */
  pickup: PickupRates;
  /** Pickup rates by the patient's local hour of the dial (`"9"` … `"20"`), each complete. */
  byLocalHour: Record<string, PickupRates>;
  /** Ringing before a person or a voicemail answers, in seconds (capped below the ringing timeout). */
  ringSeconds: Duration;
  /** Time before a busy signal, in seconds. */
  busySeconds: Duration;
  /** Length of a conversation with the agent (after the answer), in seconds. */
  talkSeconds: Duration;
  /** Greeting plus the agent's message on a voicemail, in seconds. */
  voicemailSeconds: Duration;
  verdicts: VerdictRates;
}

/**
 * Defaults: assumptions for a first forecast, not measurements — replace them with a practice's own
 * numbers (`--model`). Answer rates are lower around lunch and higher after work; a quarter of
 * unanswered calls reach voicemail.
 */
export const DEFAULT_PHONE_MODEL: Readonly<PhoneModel> = Object.freeze({
  pickup: { answer: 0.38, busy: 0.05, noAnswer: 0.3, voicemail: 0.27 },
  byLocalHour: {
    '9': { answer: 0.35, busy: 0.05, noAnswer: 0.32, voicemail: 0.28 },
    '10': { answer: 0.4, busy: 0.05, noAnswer: 0.29, voicemail: 0.26 },
    '11': { answer: 0.4, busy: 0.05, noAnswer: 0.29, voicemail: 0.26 },
    '12': { answer: 0.32, busy: 0.06, noAnswer: 0.33, voicemail: 0.29 },
    '13': { answer: 0.34, busy: 0.05, noAnswer: 0.32, voicemail: 0.29 },
    '17': { answer: 0.45, busy: 0.06, noAnswer: 0.26, voicemail: 0.23 },
    '18': { answer: 0.45, busy: 0.06, noAnswer: 0.26, voicemail: 0.23 },
  },
  ringSeconds: { min: 3, mode: 8, max: 25 },
  busySeconds: { min: 1, mode: 2, max: 4 },
  talkSeconds: { min: 25, mode: 50, max: 180 },
  voicemailSeconds: { min: 20, mode: 30, max: 45 },
  verdicts: { confirm: 0.72, cancel: 0.08, reschedule: 0.1, noVerdict: 0.07, optOut: 0.01, wrongNumber: 0.02 },
});

const rate = z.number({ error: 'must be a number from 0 to 1' }).min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');
const sumsToOne = (o: Record<string, number>) => Math.abs(Object.values(o).reduce((a, b) => a + b, 0) - 1) < 1e-6;
const pickupSchema = z
  .strictObject({ answer: rate, busy: rate, noAnswer: rate, voicemail: rate }, { error: 'must be an object {answer, busy, noAnswer, voicemail}' })
  .refine(sumsToOne, 'the rates answer + busy + noAnswer + voicemail must add up to 1');
const seconds = z.number({ error: 'must be a number of seconds' }).min(0, 'must be at least 0').max(3600, 'must be at most 3600');
const durationSchema = z
  .strictObject({ min: seconds, mode: seconds, max: seconds }, { error: 'must be an object {min, mode, max} in seconds' })
  .refine((d) => d.min <= d.mode && d.mode <= d.max, 'must have min <= mode <= max');
const verdictSchema = z
  .strictObject(
    { confirm: rate, cancel: rate, reschedule: rate, noVerdict: rate, optOut: rate, wrongNumber: rate },
    { error: 'must be an object {confirm, cancel, reschedule, noVerdict, optOut, wrongNumber}' },
  )
  .refine(sumsToOne, 'the rates must add up to 1');
const hourKey = z.string().regex(/^([0-9]|1[0-9]|2[0-3])$/, 'hours must be "0" … "23" (the patient\'s local hour)');

/** Schema of a model file: every part optional; a part given is complete (no partial rate sets). */
export const phoneModelFileSchema = z.strictObject(
  {
    pickup: pickupSchema.optional(),
    byLocalHour: z.record(hourKey, pickupSchema, { error: 'must be an object of hour → rates' }).optional(),
    ringSeconds: durationSchema.optional(),
    busySeconds: durationSchema.optional(),
    talkSeconds: durationSchema.optional(),
    voicemailSeconds: durationSchema.optional(),
    verdicts: verdictSchema.optional(),
  },
  { error: 'must be a JSON object' },
);

/** The model from a parsed JSON value: the defaults overridden part by part. Throws a {@link ValidationError} naming each bad field. */
export function parsePhoneModel(value: unknown): PhoneModel {
  const result = phoneModelFileSchema.safeParse(value);
  if (!result.success) {
    const problems: FieldProblem[] = result.error.issues.map((i) => {
      const path = i.path.map(String).join('.');
      // An unknown key is named by the issue itself.
      const keys = (i as { keys?: string[] }).keys;
      if (i.code === 'unrecognized_keys' && keys) return { field: path ? `${path}.${keys.join(', ')}` : keys.join(', '), problem: 'is not a field of the phone model' };
      return { field: path || '(model)', problem: i.message };
    });
    throw new ValidationError(problems);
  }
  const given = result.data;
  return {
    pickup: given.pickup ?? { ...DEFAULT_PHONE_MODEL.pickup },
    byLocalHour: given.byLocalHour ?? structuredClone(DEFAULT_PHONE_MODEL.byLocalHour),
    ringSeconds: given.ringSeconds ?? { ...DEFAULT_PHONE_MODEL.ringSeconds },
    busySeconds: given.busySeconds ?? { ...DEFAULT_PHONE_MODEL.busySeconds },
    talkSeconds: given.talkSeconds ?? { ...DEFAULT_PHONE_MODEL.talkSeconds },
    voicemailSeconds: given.voicemailSeconds ?? { ...DEFAULT_PHONE_MODEL.voicemailSeconds },
    verdicts: given.verdicts ?? { ...DEFAULT_PHONE_MODEL.verdicts },
  };
}

/** Reads and validates a model file; errors name the file's field (or say it is unreadable / not JSON), never quote it. */
export async function loadPhoneModel(path: string): Promise<PhoneModel> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ValidationError([{ field: '--model', problem: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ValidationError([{ field: '--model', problem: `${path} is not JSON` }]);
  }
  try {
    return parsePhoneModel(json);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw new ValidationError(err.problems.map((p) => ({ field: `--model ${p.field}`, problem: p.problem })));
  }
}

// ---------------------------------------------------------------------------------------------
// Draws
// ---------------------------------------------------------------------------------------------

/** What the network does with one dial. */
export type CallKind = 'answer' | 'busy' | 'noAnswer' | 'voicemail';
export type Verdict = keyof VerdictRates;

/** One drawn call, before compression. */
export interface CallDraw {
  kind: CallKind;
  /** Seconds of ringing (or until the busy signal / the ringing timeout). */
  ringSeconds: number;
  /** Seconds after the answer (conversation or voicemail); 0 when not answered. */
  talkSeconds: number;
  /** What the patient says (answered by the patient only). */
  verdict?: Verdict;
  /** The patient's local hour of the dial. */
  localHour: number;
}

/** Deterministic uniform numbers in [0, 1) for one (seed, key). */
function stream(seed: number, key: string): () => number {
  const h = createHash('sha256').update(`${seed}\u0000${key}`).digest();
  let a = h.readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function triangular(d: Duration, u: number): number {
  const { min, mode, max } = d;
  if (max <= min) return min;
  const c = (mode - min) / (max - min);
  return u < c ? min + Math.sqrt(u * (max - min) * (mode - min)) : max - Math.sqrt((1 - u) * (max - min) * (max - mode));
}

function pick<K extends string>(rates: Record<K, number>, u: number): K {
  let acc = 0;
  const keys = Object.keys(rates) as K[];
  for (const k of keys) {
    acc += rates[k];
    if (u < acc) return k;
  }
  return keys[keys.length - 1]!;
}

/** Draws the call of attempt `attempt` of `workflowId` dialed at `at` in `zone`. */
export function drawCall(model: PhoneModel, seed: number, workflowId: string, attempt: number, at: Date, zone: string, ringingTimeoutSeconds: number): CallDraw {
  const u = stream(seed, `${workflowId}#${attempt}`);
  const localHour = DateTime.fromJSDate(at).setZone(zone).hour;
  const rates = model.byLocalHour[String(localHour)] ?? model.pickup;
  const kind = pick<CallKind>({ answer: rates.answer, busy: rates.busy, noAnswer: rates.noAnswer, voicemail: rates.voicemail }, u());
  const ring = Math.min(triangular(model.ringSeconds, u()), Math.max(0, ringingTimeoutSeconds - 1));
  const busy = triangular(model.busySeconds, u());
  const talk = triangular(model.talkSeconds, u());
  const vm = triangular(model.voicemailSeconds, u());
  const verdict = pick<Verdict>(model.verdicts, u());
  switch (kind) {
    case 'busy':
      return { kind, ringSeconds: busy, talkSeconds: 0, localHour };
    case 'noAnswer':
      return { kind, ringSeconds: ringingTimeoutSeconds, talkSeconds: 0, localHour };
    case 'voicemail':
      return { kind, ringSeconds: ring, talkSeconds: vm, localHour };
    default:
      return { kind, ringSeconds: ring, talkSeconds: talk, verdict, localHour };
  }
}

const VERDICT_OUTCOME: Record<Verdict, CallOutcome | undefined> = {
  confirm: CallOutcome.CONFIRMED,
  cancel: CallOutcome.CANCELLED,
  reschedule: CallOutcome.RESCHEDULE_REQUESTED,
  noVerdict: undefined,
  optOut: CallOutcome.OPTED_OUT,
  wrongNumber: CallOutcome.WRONG_NUMBER,
};

// ---------------------------------------------------------------------------------------------
// The Telephony port
// ---------------------------------------------------------------------------------------------

/** One call as the model played it: ids and numbers only (no phone number, no name). */
export interface ModelCall extends CallDraw {
  workflowId: string;
  attempt: number;
  /** Test-server time of the dial (ms). */
  dialedAtMs: number;
  /** Wall-clock (monotonic, ms) start and end of the compressed call: the channel was held in between. */
  startedRealMs: number;
  endedRealMs?: number;
  /** Test-server time (ms) when the line was down (the channel is released right after). */
  endedAtMs?: number;
}

export interface ModelTelephonyOptions {
  model: PhoneModel;
  seed: number;
  /** Calls are played this many times faster than modelled (≥ 1). */
  speed: number;
  /** The Temporal client: the agent's verdict goes through the `outcome` Update. */
  client: Client;
  /** Test-server clock (ms): the local hour of each dial. */
  now(): Promise<number>;
  /** The patient's zone of a workflow (from the campaign's contacts). */
  zoneOf(workflowId: string): string | undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The model phone network. */
export class ModelTelephony implements Telephony {
  /** Every call placed, in the order dialed. */
  readonly calls: ModelCall[] = [];
  /** Calls up now, and the most up at once. */
  live = 0;
  maxLive = 0;
  private readonly rooms = new Map<string, { status: 'active' | 'hangup'; call: ModelCall }>();

  constructor(private readonly options: ModelTelephonyOptions) {
    if (!(options.speed >= 1)) throw new Error('speed: must be at least 1');
  }

  async dial(input: DialInput, signal?: AbortSignal): Promise<DialResult> {
    const { model, seed, speed } = this.options;
    const at = await this.options.now();
    const zone = this.options.zoneOf(input.workflowId) ?? input.agentMetadata.patientTimeZone;
    const draw = drawCall(model, seed, input.workflowId, input.attempt, new Date(at), zone, input.ringingTimeoutSeconds);
    const call: ModelCall = { ...draw, workflowId: input.workflowId, attempt: input.attempt, dialedAtMs: at, startedRealMs: performance.now() };
    this.calls.push(call);
    this.up();
    const wait = async (s: number) => {
      await sleep((s * 1000) / speed);
      signal?.throwIfAborted();
    };
    try {
      await wait(draw.ringSeconds);
    } catch (err) {
      this.down(call);
      throw err;
    }
    if (draw.kind === 'busy') {
      this.down(call);
      throw new DialError(DialFailureType.BUSY, 'SIP call failed: 486 Busy Here', 486, 'Busy Here');
    }
    if (draw.kind === 'noAnswer') {
      this.down(call);
      throw new DialError(DialFailureType.NO_ANSWER, 'SIP call failed: 480 Temporarily Unavailable', 480, 'Temporarily Unavailable');
    }
    // Answered: the conversation (or the voicemail message) holds the line, then the agent reports.
    this.rooms.set(input.roomName, { status: 'active', call });
    await sleep((draw.talkSeconds * 1000) / speed);
    let outcome: CallOutcome | undefined;
    if (draw.kind === 'voicemail') outcome = input.agentMetadata.voicemailAllowed ? CallOutcome.VOICEMAIL_LEFT : CallOutcome.VOICEMAIL_REACHED;
    else outcome = VERDICT_OUTCOME[draw.verdict!];
    if (outcome !== undefined) {
      try {
        await this.options.client.workflow.getHandle(input.workflowId).executeUpdate(outcomeUpdate, { args: [{ attempt: input.attempt, outcome }] });
      } catch {
        // Refused (the confirmation stopped meanwhile): the agent's late outcome is not modelled.
      }
    }
    // The agent says goodbye and hangs up (or the patient hangs up without a verdict).
    const room = this.rooms.get(input.roomName);
    if (room) room.status = 'hangup';
    return { answered: true, participantIdentity: SIP_PARTICIPANT_IDENTITY, sipCallId: `SCL_${input.roomName}`, answeredAt: new Date(at).toISOString() };
  }

  async checkCall(roomName: string): Promise<CallCheckResult> {
    const callStatus = this.rooms.get(roomName)?.status;
    return { state: callStatus ? CallCheckState.ANSWERED : CallCheckState.NOT_CONNECTED, callStatus };
  }

  async hangUp(roomName: string): Promise<void> {
    const room = this.rooms.get(roomName);
    if (!room) return;
    this.rooms.delete(roomName);
    this.down(room.call);
  }

  private up(): void {
    this.live += 1;
    if (this.live > this.maxLive) this.maxLive = this.live;
  }

  private down(call: ModelCall): void {
    if (call.endedRealMs !== undefined) return;
    call.endedRealMs = performance.now();
    this.live -= 1;
    // The test server's time, without asking it: the dial activity is in flight for the whole call,
    // so the server skips no time meanwhile and its clock runs with the wall clock from the dial on.
    call.endedAtMs = call.dialedAtMs + (call.endedRealMs - call.startedRealMs);
  }

  /**
   * Most calls up at once on the test server's clock: from each call's dial (after its channel was
   * granted) to the moment its line was down (before its channel is released).
   */
  peakConcurrentOnTestClock(): number {
    const edges: [number, number][] = [];
    for (const c of this.calls) {
      edges.push([c.dialedAtMs, 1]);
      edges.push([c.endedAtMs ?? Number.POSITIVE_INFINITY, -1]);
    }
    // Ends before starts at the same instant: a channel released and granted in the same ms is not two calls.
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let live = 0;
    let peak = 0;
    for (const [, d] of edges) {
      live += d;
      peak = Math.max(peak, live);
    }
    return peak;
  }
}
