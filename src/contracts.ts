/**
 * Contracts shared by workflows, activities, the voice agent and clients.
 *
 * This module crosses every boundary of the system, so it imports nothing from Node and
 * nothing with side effects: it is bundled into the deterministic workflow sandbox as-is.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Task queue served by the confirmation worker (workflows and activities). */
export const TASK_QUEUE = 'call-campaigns';

/**
 * Workflow id of the confirmation of one appointment: one workflow per appointment, ever running
 * once. `confirm:<practice id>:<appointment id>` — the ids cannot contain `:` (see the validation),
 * so two different (practice, appointment) pairs never share an id (`bi-north` + `A7` and `bi` +
 * `north-A7` differ), and the id stays readable in the Web UI.
 */
export function confirmationWorkflowId(practiceId: string, appointmentId: string): string {
  return `confirm:${practiceId}:${appointmentId}`;
}

/**
 * The id scheme before `confirm:<practice>:<appointment>`: `confirm-<practice>-<appointment>`. Not
 * injective (`-` is allowed in both ids); only used to find confirmations started under it, whose
 * search attributes `PracticeId` / `AppointmentId` tell whose they are.
 */
export function legacyConfirmationWorkflowId(practiceId: string, appointmentId: string): string {
  return `confirm-${practiceId}-${appointmentId}`;
}

/**
 * Room of one call attempt: unique per workflow and attempt, so a retried check never confuses two
 * calls. `<workflow id>-a<attempt>`: the attempt is the trailing digits, so the pair is recoverable.
 */
export function attemptRoomName(workflowId: string, attempt: number): string {
  return `${workflowId}-a${attempt}`;
}

/** Participant identity of the callee's SIP leg in the attempt's room. */
export const SIP_PARTICIPANT_IDENTITY = 'callee';

/**
 * Participant attribute the agent sets to `'true'` in a call's room once it can speak at the answer
 * (joined, its session and audio track up, its opening rendered). Dispatched at the dial, the dial
 * waits for it (a bounded while) before the INVITE: a phone answered at once then hears the agent
 * at once too.
 */
export const AGENT_READY_ATTRIBUTE = 'callcampaigns.agentReady';

/** What came of one call attempt, or of the whole confirmation. */
export enum CallOutcome {
  /** The patient confirmed the appointment. Final. */
  CONFIRMED = 'CONFIRMED',
  /** The patient cancelled the appointment. Final. */
  CANCELLED = 'CANCELLED',
  /** The patient asked to move the appointment (the preference is in the detail). Final. */
  RESCHEDULE_REQUESTED = 'RESCHEDULE_REQUESTED',
  /** The patient asked not to be called again; the number goes on the do-not-call list. Final. */
  OPTED_OUT = 'OPTED_OUT',
  /** The person who answered is not the patient. Final. */
  WRONG_NUMBER = 'WRONG_NUMBER',
  /** The call was handed to a person at the practice. Final. */
  TRANSFERRED = 'TRANSFERRED',
  /** A voicemail message was left. Retried while attempts remain; at most one message per appointment. */
  VOICEMAIL_LEFT = 'VOICEMAIL_LEFT',
  /** A voicemail answered but no message was left (one was left already). Ends the confirmation as VOICEMAIL_LEFT. */
  VOICEMAIL_REACHED = 'VOICEMAIL_REACHED',
  /** The phone rang until the ringing timeout (SIP 408 / 480). Retried. */
  NO_ANSWER = 'NO_ANSWER',
  /** The line was busy (SIP 486). Retried. */
  BUSY = 'BUSY',
  /** The callee rejected the call (SIP 603). Final. */
  DECLINED = 'DECLINED',
  /** The number does not exist (SIP 404 / 484). Final. */
  INVALID_NUMBER = 'INVALID_NUMBER',
  /** The call could not be placed (trunk or carrier error, hung up at once, lost call). Retried. */
  CALL_FAILED = 'CALL_FAILED',
  /**
   * The dial was lost (its worker died, or no response came) and what became of the call cannot be
   * known: the leg left unanswered before its ringing timeout (busy, declined, unavailable … look
   * alike in the room), or nothing was seen at all. Never a trunk failure. Retried.
   */
  CALL_RESULT_UNKNOWN = 'CALL_RESULT_UNKNOWN',
  /** The call was answered but the agent reported nothing before the call's time ran out. Retried. */
  NO_OUTCOME = 'NO_OUTCOME',
  /** No consent on record for this number at this practice: never dialed. Final. */
  NO_CONSENT = 'NO_CONSENT',
  /** The per-number caps leave no slot before the deadline. Final. */
  CAP_REACHED = 'CAP_REACHED',
  /** No calling window opens before the deadline. Final. */
  EXPIRED = 'EXPIRED',
  /** The appointment was cancelled by the practice while the confirmation ran. Final. */
  APPOINTMENT_CANCELLED = 'APPOINTMENT_CANCELLED',
  /**
   * The confirmation itself was cancelled (Temporal cancellation: Web UI, `temporal workflow cancel`,
   * `handle.cancel()`) before it was decided; a call in progress was hung up. Final.
   */
  CONFIRMATION_CANCELLED = 'CONFIRMATION_CANCELLED',
  /**
   * The campaign that started the confirmation was cancelled before the confirmation was decided
   * (a call in progress ended normally first; its verdict, if any, stands). Final.
   */
  CAMPAIGN_CANCELLED = 'CAMPAIGN_CANCELLED',
}

/** Outcomes after which no further call is placed for the appointment. */
export const FINAL_OUTCOMES: ReadonlySet<CallOutcome> = new Set([
  CallOutcome.CONFIRMED,
  CallOutcome.CANCELLED,
  CallOutcome.RESCHEDULE_REQUESTED,
  CallOutcome.OPTED_OUT,
  CallOutcome.WRONG_NUMBER,
  CallOutcome.TRANSFERRED,
  CallOutcome.DECLINED,
  CallOutcome.INVALID_NUMBER,
  CallOutcome.NO_CONSENT,
  CallOutcome.CAP_REACHED,
  CallOutcome.EXPIRED,
  CallOutcome.APPOINTMENT_CANCELLED,
  CallOutcome.CONFIRMATION_CANCELLED,
  CallOutcome.CAMPAIGN_CANCELLED,
]);

/** Outcomes of an attempt that lead to another attempt (with backoff) while attempts remain. */
export const RETRYABLE_OUTCOMES: ReadonlySet<CallOutcome> = new Set([
  CallOutcome.BUSY,
  CallOutcome.NO_ANSWER,
  CallOutcome.NO_OUTCOME,
  CallOutcome.CALL_FAILED,
  CallOutcome.CALL_RESULT_UNKNOWN,
  CallOutcome.VOICEMAIL_LEFT,
]);

/** Outcomes the voice agent may report through {@link outcomeUpdate}; the rest are decided by the workflow. */
export const AGENT_OUTCOMES: ReadonlySet<CallOutcome> = new Set([
  CallOutcome.CONFIRMED,
  CallOutcome.CANCELLED,
  CallOutcome.RESCHEDULE_REQUESTED,
  CallOutcome.OPTED_OUT,
  CallOutcome.WRONG_NUMBER,
  CallOutcome.TRANSFERRED,
  CallOutcome.VOICEMAIL_LEFT,
  CallOutcome.VOICEMAIL_REACHED,
  CallOutcome.NO_OUTCOME,
]);

/** Where a confirmation stands; also the `Phase` search attribute. */
export enum Phase {
  /** Checking consent, the calling window and the caps. */
  PLANNING = 'PLANNING',
  /** Sleeping until the calling window opens (or a backoff ends). */
  WAITING_FOR_WINDOW = 'WAITING_FOR_WINDOW',
  /** Sleeping until the per-number caps allow another call. */
  WAITING_FOR_CAP = 'WAITING_FOR_CAP',
  /** In the calling window, waiting for a channel of the trunk (its limits, the campaign's, a pause). */
  WAITING_FOR_CHANNEL = 'WAITING_FOR_CHANNEL',
  /** Placing the call and talking with the patient. */
  CALLING = 'CALLING',
  /** Finished: the outcome is final. */
  DONE = 'DONE',
}

/** SIP failure types of the dial activity's `ApplicationFailure`s; the workflow branches on them. */
export enum DialFailureType {
  /** SIP 486 Busy Here. */
  BUSY = 'BUSY',
  /** Rang until the ringing timeout, or SIP 480 / 408. */
  NO_ANSWER = 'NO_ANSWER',
  /** SIP 603 Decline. */
  DECLINED = 'DECLINED',
  /** SIP 404 / 484 / 410 / 604: the number does not exist. */
  INVALID_NUMBER = 'INVALID_NUMBER',
  /** Trunk, carrier or LiveKit error: the call was not placed or failed in the network. */
  TRUNK_ERROR = 'TRUNK_ERROR',
  /**
   * LiveKit refused the request before any INVITE was sent (HTTP 503 `unavailable` "cpu exhausted",
   * no SIP status): certainly no call. The dial activity retries it itself, with backoff; when those
   * retries run out it fails with this type (recorded as CALL_FAILED: the call could not be placed).
   */
  NOT_PLACED = 'NOT_PLACED',
  /** The call's fate is unknown (client timeout, connection lost after sending): the workflow checks the room, never redials. */
  UNKNOWN = 'UNKNOWN',
}

/** Custom search attributes (registered on the namespace). None carries a name or a phone number. */
export const SearchAttr = {
  AppointmentId: defineSearchAttributeKey('AppointmentId', SearchAttributeType.KEYWORD),
  PracticeId: defineSearchAttributeKey('PracticeId', SearchAttributeType.KEYWORD),
  CampaignId: defineSearchAttributeKey('CampaignId', SearchAttributeType.KEYWORD),
  Phase: defineSearchAttributeKey('Phase', SearchAttributeType.KEYWORD),
  Outcome: defineSearchAttributeKey('Outcome', SearchAttributeType.KEYWORD),
  NextCallAt: defineSearchAttributeKey('NextCallAt', SearchAttributeType.DATETIME),
} as const;

/** Search attribute names and their types, as `temporal server start-dev --search-attribute` takes them. */
export const SEARCH_ATTRIBUTE_TYPES: Readonly<Record<keyof typeof SearchAttr, 'Keyword' | 'Datetime'>> = {
  AppointmentId: 'Keyword',
  PracticeId: 'Keyword',
  CampaignId: 'Keyword',
  Phase: 'Keyword',
  Outcome: 'Keyword',
  NextCallAt: 'Datetime',
};

/** Retry and call-length settings of one confirmation. Every field has a default. */
export interface CallPolicy {
  /** Most calls placed for the appointment. Default 3. */
  maxAttempts: number;
  /** Wait after the first retryable outcome, in seconds. Default 1800 (30 min). */
  initialBackoffSeconds: number;
  /** Factor applied to the wait after each further retryable outcome. Default 2. */
  backoffMultiplier: number;
  /** How long the phone may ring before the attempt counts as NO_ANSWER, in seconds (at least 15). Default 30. */
  ringingTimeoutSeconds: number;
  /** Longest call, after which the SIP leg is hung up, in seconds. Default 300. */
  maxCallDurationSeconds: number;
  /** Extra wait for the agent's outcome after the longest call, in seconds. Default 30. */
  outcomeMarginSeconds: number;
  /** Calls stop this long before the appointment starts, in seconds. Default 7200 (2 h). */
  deadlineBeforeAppointmentSeconds: number;
}

/** Defaults of {@link CallPolicy}. */
export const DEFAULT_CALL_POLICY: Readonly<CallPolicy> = {
  maxAttempts: 3,
  initialBackoffSeconds: 30 * 60,
  backoffMultiplier: 2,
  ringingTimeoutSeconds: 30,
  maxCallDurationSeconds: 300,
  outcomeMarginSeconds: 30,
  deadlineBeforeAppointmentSeconds: 2 * 60 * 60,
};

/** Shortest ringing allowed before a call counts as unanswered, in seconds (calling rules). */
export const MIN_RINGING_TIMEOUT_SECONDS = 15;

/** One appointment to confirm: the single input of {@link confirmAppointmentWorkflow}. Health data: encrypted in histories. */
export interface ConfirmationRequest {
  /** The practice's id of the appointment (letters, digits, `-`, `_`; at most 64). Part of the workflow id. */
  appointmentId: string;
  /** The practice's id of the patient. */
  patientId: string;
  /** Patient's name as the agent may say it. Never logged, never in search attributes or ids. */
  patientName: string;
  /** Patient's phone number in E.164 (`+12125550123`), the number the patient gave the practice. */
  phone: string;
  /** Patient's IANA time zone (`America/Chicago`); the calling window is computed in it. */
  patientTimeZone: string;
  /** Appointment start, ISO 8601 with offset (`2026-12-01T10:30:00-06:00`). */
  appointmentStart: string;
  /** Practice id (letters, digits, `-`, `_`; at most 64). Part of the workflow id. */
  practiceId: string;
  /** Practice name the agent says first (calling rules require it). */
  practiceName: string;
  /** Number the patient can call back, E.164 (calling rules require it in every call and message). */
  practiceCallbackNumber: string;
  /** Provider the appointment is with (`Dr. Rivera`). */
  provider: string;
  /** Short reason for the visit (`cleaning`); no further health details. */
  reason: string;
  /** Campaign that started this confirmation, if any. */
  campaignId?: string;
  /** Overrides of the retry and call-length defaults ({@link DEFAULT_CALL_POLICY}). */
  policy?: Partial<CallPolicy>;
}

/** One call attempt as it went. */
export interface AttemptRecord {
  /** 1-based attempt number. */
  attempt: number;
  /** Room of the call. */
  roomName: string;
  /** When the call was placed, UTC ISO 8601. */
  dialedAt: string;
  /** When the call was placed, in the patient's time zone (ISO 8601 with offset). */
  dialedAtLocal: string;
  /** When the attempt ended, UTC ISO 8601. */
  endedAt: string;
  /** SIP status code of the call's final response when it failed (486, 603, …), or 200 when answered. */
  sipStatusCode?: number;
  /** SIP reason phrase (`Busy Here`). */
  sipStatus?: string;
  /** What came of the attempt. */
  outcome: CallOutcome;
}

/** What the workflow returns: the final outcome and every attempt. */
export interface ConfirmationResult {
  /** The practice's appointment id. */
  appointmentId: string;
  /** Final outcome of the confirmation. */
  outcome: CallOutcome;
  /** One record per call placed, in order. */
  attempts: AttemptRecord[];
  /** When the outcome was decided, UTC ISO 8601. */
  decidedAt: string;
  /** Outcome detail reported by the agent (e.g. reschedule preference). */
  detail?: OutcomeDetail;
}

/** Free-form detail the agent attaches to an outcome. No health details beyond the appointment. */
export interface OutcomeDetail {
  /** Preferred days or times as the patient said them (RESCHEDULE_REQUESTED). */
  reschedulePreference?: string;
  /** Short note for the practice. */
  note?: string;
}

/** Argument of {@link outcomeUpdate}: the agent's verdict on the current attempt. */
export interface OutcomeReport {
  /** The attempt the agent was dispatched for (from the job metadata). */
  attempt: number;
  /** The verdict; one of {@link AGENT_OUTCOMES}. */
  outcome: CallOutcome;
  /** Optional detail. */
  detail?: OutcomeDetail;
}

/** What {@link outcomeUpdate} returns to the agent. */
export interface OutcomeAck {
  /** Always true: a rejected report fails the Update instead. */
  accepted: true;
  /** The attempt the outcome was recorded for. */
  attempt: number;
  /** The outcome recorded. */
  outcome: CallOutcome;
  /** Whether the confirmation ends with this outcome (false: another call may follow). */
  final: boolean;
}

/** Answer of {@link statusQuery}. */
export interface ConfirmationStatus {
  /** Where the confirmation stands. */
  phase: Phase;
  /** Current (or last) attempt number; 0 before the first call. */
  attempt: number;
  /** When the next call may be placed, UTC ISO 8601, while waiting. */
  nextCallAt?: string;
  /** Outcome of the last attempt, if any. */
  lastOutcome?: CallOutcome;
  /** Final outcome, once decided. */
  finalOutcome?: CallOutcome;
  /** Calls stop at this instant, UTC ISO 8601. */
  deadline: string;
  /** Appointment start (after any move), ISO 8601. */
  appointmentStart: string;
  /** Every attempt so far. */
  attempts: AttemptRecord[];
}

/** Argument of {@link appointmentMovedSignal}. */
export interface AppointmentMoved {
  /** New appointment start, ISO 8601 with offset. */
  appointmentStart: string;
}

/** The voice agent reports the outcome of the current call. Rejected: unknown outcome, wrong attempt, already decided. */
export const outcomeUpdate = defineUpdate<OutcomeAck, [OutcomeReport]>('outcome');
/** Current phase, attempt, next call time and outcomes. */
export const statusQuery = defineQuery<ConfirmationStatus>('status');
/** The patient opted out (any channel): stop now and put the number on the do-not-call list. */
export const optOutSignal = defineSignal<[]>('optOut');
/** The appointment moved: re-plan the deadline and the next call. */
export const appointmentMovedSignal = defineSignal<[AppointmentMoved]>('appointmentMoved');
/**
 * What a plan reads changed outside the workflow (a time-zone override recorded for the number):
 * a confirmation waiting for its window or caps plans again now, instead of at the end of a wait
 * computed from the old facts. Harmless at any other time (the next plan reads the new facts anyway).
 */
export const replanSignal = defineSignal<[]>('replan');
/** The practice cancelled the appointment: stop (APPOINTMENT_CANCELLED). */
export const appointmentCancelledSignal = defineSignal<[]>('appointmentCancelled');
/**
 * The campaign that started this confirmation was cancelled: no further call; a call in progress
 * ends normally (the agent's verdict stands), else the confirmation ends CAMPAIGN_CANCELLED.
 */
export const campaignCancelledSignal = defineSignal<[]>('campaignCancelled');

// ---------------------------------------------------------------------------------------------
// Activities. Workflows import these types only (`import type`); the worker builds the
// implementations with `createActivities(deps)`.
// ---------------------------------------------------------------------------------------------

/** Consent state of a number at a practice, as the planning activity found it. */
export enum ConsentState {
  GRANTED = 'GRANTED',
  MISSING = 'MISSING',
  REVOKED = 'REVOKED',
  DO_NOT_CALL = 'DO_NOT_CALL',
}

/** Decision of {@link ConfirmationActivities.planAttempt}. Each is written to the audit table. */
export enum PlanDecision {
  /** Call now: the attempt is reserved in the ledger. */
  DIAL = 'DIAL',
  /** Outside the calling window (or in a backoff): wait until `waitUntil`. */
  WAIT_WINDOW = 'WAIT_WINDOW',
  /** The per-number caps are full: wait until `waitUntil`. */
  WAIT_CAP = 'WAIT_CAP',
  NO_CONSENT = 'NO_CONSENT',
  DO_NOT_CALL = 'DO_NOT_CALL',
  EXPIRED = 'EXPIRED',
  CAP_REACHED = 'CAP_REACHED',
}

/** Who and what an audited decision is about (shared by the planning and finishing activities). */
export interface DecisionSubject {
  workflowId: string;
  runId: string;
  /** Sequence number of this decision within the workflow run, for idempotent audit rows. */
  decisionSeq: number;
  appointmentId: string;
  practiceId: string;
  phone: string;
  patientTimeZone: string;
  /** The attempt the decision is about (1-based), or 0 when no call is involved. */
  attempt: number;
  /** Campaign that started the confirmation, if any (told when the confirmation ends). */
  campaignId?: string;
}

/** Input of `planAttempt`. `now` is the workflow's clock, so time-skipping tests and replays agree. */
export interface PlanAttemptInput extends DecisionSubject {
  patientId: string;
  /** Calls stop at this instant, UTC ISO 8601. */
  deadline: string;
  /** The workflow's current time, UTC ISO 8601. */
  now: string;
  /** No call before this instant (end of a backoff), UTC ISO 8601. */
  notBefore?: string;
  /** Set on the first plan and after a move: record the appointment row (and its workflow) first. */
  appointment?: RegisterConfirmationInput;
  /** On DIAL, take a channel if one is free now (`channelGranted`); the workflow waits for one otherwise. */
  tryChannel?: boolean;
}

/** Result of `planAttempt`. */
export interface PlanAttemptResult {
  decision: PlanDecision;
  /** For WAIT_*: the instant to re-plan at, UTC ISO 8601. */
  waitUntil?: string;
  /** `waitUntil` as the patient's wall clock, for operators (`09:00 America/Chicago`). */
  waitUntilLocal?: string;
  /** For DIAL: when the calling window closes (no call may start after it), UTC ISO 8601. */
  windowEndsAt?: string;
  /** For DIAL with `tryChannel`: a channel was free and is leased to the attempt (no wait needed). */
  channelGranted?: boolean;
  /** `now` in the patient's time zone, ISO 8601 with offset. */
  nowLocal: string;
  /** Calls to this number counted for the caps: today (patient's day) and over the rolling week. */
  dayCount: number;
  weekCount: number;
  /**
   * The zones the calling window was checked in and which of them decided (also in the decision's
   * audit row). Absent from plans made before the number's zones were checked.
   */
  timeZones?: TimeZoneCheck;
}

/**
 * A practice's statement that the patient with this number lives in `zone`, whatever the number's
 * own zones are (a number kept after a move): while it is in force the calling window is checked in
 * `zone` alone. `zone: null` withdraws it. Recorded append-only with who and why.
 */
export interface TimeZoneOverrideInput {
  practiceId: string;
  /** The patient's number, E.164. Health data. */
  phone: string;
  /** IANA zone the patient lives in, or null to withdraw the override. */
  zone: string | null;
  /** Why (e.g. "patient confirmed by phone they live in Hawaii"); no further health details. */
  reason: string;
  /** Who recorded it (operator id or system name). */
  actor: string;
}

/** Where a zone the calling window is checked in comes from. */
export type TimeZoneSource = 'request' | 'number' | 'override';

/**
 * What the time-zone lookup of a phone number found (Google libphonenumber's time-zone data):
 * `mapped` — zones of the number's own prefix (an area code may span several); `country-wide` —
 * the data knows only the country, which spans several zones (toll-free and non-geographic
 * numbers, or a prefix without data), so the number says nothing about where the patient is;
 * `unknown` — no data at all. Only `mapped` zones are checked.
 */
export type NumberZoneStatus = 'mapped' | 'country-wide' | 'unknown';

/**
 * The zones a planning decision checked the calling window in, and which decided. A call may start
 * only while the window is open in every zone of `checked`: the request's `patientTimeZone` and the
 * number's mapped zones, or the override's zone alone when the practice recorded one for the
 * number. Zone names only (no number, no time of the appointment): what the audit row already holds.
 */
export interface TimeZoneCheck {
  /** Every zone the window was checked in (distinct IANA names), with where each came from. */
  checked: { zone: string; sources: TimeZoneSource[] }[];
  /** What the number's lookup found (whether or not its zones were used). */
  numberZones: NumberZoneStatus;
  /** The time-zone override in force for the practice and number (its record's id), when there is one. */
  overrideId?: number;
  /**
   * The zone whose local date the per-day cap counts and in which local times are recorded: the
   * override's zone, else the request's `patientTimeZone`.
   */
  primaryZone: string;
  /** For a wait for the window: the zone whose window opened last (the one waited for). */
  openedBy?: string;
  /** For DIAL: the zone whose window closes first (no call starts after it closes). */
  closedBy?: string;
  /** The window is open in each zone, but never in all of them at once before the deadline. */
  noCommonWindow?: true;
  /** The mapping data used (package and version), and the runtime's tz database. */
  data: string;
}

/** Input of `dial`. No trunk credentials: the worker holds the trunk id and LiveKit keys. */
export interface DialInput {
  workflowId: string;
  attempt: number;
  roomName: string;
  phone: string;
  ringingTimeoutSeconds: number;
  maxCallDurationSeconds: number;
  /** The call's room is deleted this long after the longest call, should the line still be up, in seconds. */
  outcomeMarginSeconds: number;
  /** Once the agent's outcome is recorded, the call may run this long (the goodbye) before the room is deleted, in seconds. */
  hangupGraceSeconds: number;
  /** Job metadata for the dispatched agent: what it needs to talk, no more. */
  agentMetadata: AgentJobMetadata;
}

/** How an answered call ended. */
export enum CallEnd {
  /** The line was hung up (by the agent after its goodbye, or by the patient). */
  HUNG_UP = 'HUNG_UP',
  /** The outcome was recorded and the line stayed up past the goodbye grace: the room was deleted. */
  AFTER_OUTCOME = 'AFTER_OUTCOME',
  /** The line stayed up past the longest call (+ margin): the room was deleted. */
  MAX_DURATION = 'MAX_DURATION',
}

/** Result of `dial` once an answered call has ended. */
export interface CallResult extends DialResult {
  /** When the call ended, UTC ISO 8601. */
  endedAt: string;
  end: CallEnd;
}

/** Result of `dial` when the call was answered. Failures throw `ApplicationFailure` typed by {@link DialFailureType}. */
export interface DialResult {
  answered: true;
  /** SIP participant identity in the room. */
  participantIdentity: string;
  /** SIP call id, for support. */
  sipCallId?: string;
  /** When the callee answered, UTC ISO 8601. */
  answeredAt: string;
}

/** Details attached to a dial `ApplicationFailure` (its first detail). */
export interface DialFailureDetails {
  sipStatusCode?: number;
  sipStatus?: string;
}

/** What `checkCall` found in the attempt's room after an ambiguous dial. */
export enum CallCheckState {
  /** The SIP participant is (or was) active: the call was answered. */
  ANSWERED = 'ANSWERED',
  /** No room or no SIP participant: no call is up (what `Telephony.checkCall` reports; the activity tells more). */
  NOT_CONNECTED = 'NOT_CONNECTED',
  /** The leg rang (or dialed) until the ringing timeout and left unanswered: the phone was not answered. */
  NO_ANSWER = 'NO_ANSWER',
  /** No call is up, and whether or how it rang cannot be known (left early unanswered, or never seen). */
  UNKNOWN = 'UNKNOWN',
}

/**
 * What the dial activity saw of its call while `CreateSIPParticipant` was in flight, sent as its
 * heartbeat details: when its worker dies, the workflow gets the last of them
 * (`TimeoutFailure.lastHeartbeatDetails`) and passes them to `checkCall`. Times are ISO 8601.
 */
export interface DialProgress {
  /** When the activity sent `CreateSIPParticipant`. */
  dialStartedAt: string;
  /** The leg's last `sip.callStatus` seen in the room (dialing, ringing, active). */
  lastStatus?: string;
  /** When the leg was last seen in the room. */
  lastSeenAt?: string;
  /** When the leg was first seen `active` (the call was answered). */
  answeredAt?: string;
}

/** Input of `checkCall`. */
export interface CheckCallInput {
  roomName: string;
  /** A phone still ringing is watched at most this long, in seconds. */
  ringingTimeoutSeconds: number;
  /** When the workflow scheduled the dial (ISO 8601): the dial's start when nothing better is known. */
  dialedAt?: string;
  /** The lost dial activity's last heartbeat details, when it sent any. */
  progress?: DialProgress;
}

/** Result of `checkCall`. */
export interface CallCheckResult {
  state: CallCheckState;
  /** The SIP participant's `sip.callStatus` attribute when found. */
  callStatus?: string;
  /** When the SIP participant joined the room (ISO 8601; livekit-sip adds it just before the INVITE). */
  joinedAt?: string;
}

/** Job metadata of the agent dispatched to an attempt's room (JSON in the dispatch). */
export interface AgentJobMetadata {
  workflowId: string;
  attempt: number;
  practiceName: string;
  practiceCallbackNumber: string;
  provider: string;
  /** Appointment start in the patient's zone, ISO 8601 with offset. */
  appointmentStartLocal: string;
  patientTimeZone: string;
  reason: string;
  /** Patient's first name to greet with (never logged). */
  patientFirstName: string;
  /** False when a voicemail was already left for this appointment. */
  voicemailAllowed: boolean;
}

/** Input of `finishAttempt`: hang up (delete the room), record the attempt, write back a final outcome. */
export interface FinishAttemptInput extends DecisionSubject {
  /** Room to delete, when a call was placed. */
  roomName?: string;
  /** What came of this attempt (or, with no call, why the confirmation ends). */
  outcome: CallOutcome;
  sipStatusCode?: number;
  sipStatus?: string;
  /** Set when the confirmation ends: the outcome written back to the scheduling system. */
  finalOutcome?: CallOutcome;
  /**
   * The attempt was reserved but its call never placed (the confirmation stopped while it waited for
   * a channel): its ledger reservation is released instead of given an outcome, and its lease too.
   */
  notPlaced?: boolean;
  detail?: OutcomeDetail;
  /**
   * Not final, and the next attempt waits for its backoff until then (UTC ISO 8601): the appointment
   * shows as waiting with this next call time, and the audit row says so. Absent: back to planning.
   */
  retryAt?: string;
  /** With `retryAt`: the confirmation's deadline, UTC ISO 8601 (no next call is looked for after it). */
  deadline?: string;
  /** The workflow's current time, UTC ISO 8601. */
  now: string;
}

/** What `finishAttempt` found (undefined in histories recorded before it returned anything). */
export interface FinishAttemptResult {
  /**
   * With `retryAt`: the first instant at or after it, before the deadline, at which the calling
   * window (in every zone of the number) and the per-number caps, as the ledger stands, allow the next
   * call (UTC ISO 8601); absent when there is none. The workflow waits until then, then plans (which
   * checks everything again) — instead of waking at `retryAt` only to wait again.
   */
  nextCallAt?: string;
  /**
   * With `retryAt`: no call is allowed before the deadline (the window and the caps, as the ledger
   * stands). The workflow plans at once instead of waiting for the backoff; the plan then ends it.
   */
  noCallBeforeDeadline?: boolean;
}

/** The appointment row the scheduling-system port keeps (recorded by `planAttempt`). */
export interface RegisterConfirmationInput {
  workflowId: string;
  /** Campaign that started the confirmation, if any (progress and results are counted per campaign). */
  campaignId?: string;
  appointmentId: string;
  practiceId: string;
  patientId: string;
  phone: string;
  patientTimeZone: string;
  appointmentStart: string;
}

/** Activities of the confirmation workflow. */
export interface ConfirmationActivities {
  /**
   * Records the appointment row when asked (so an opt-out finds every running confirmation of a
   * number), then decides: consent/DNC, deadline, calling window and cap reservation, audited.
   */
  planAttempt(input: PlanAttemptInput): Promise<PlanAttemptResult>;
  /**
   * Places one call through LiveKit (never more than once per attempt) and stays with it until it
   * ends, heartbeating: the room is deleted once the outcome is recorded and the goodbye is over,
   * or at the longest call. Failures throw `ApplicationFailure`s typed by {@link DialFailureType}.
   */
  dial(input: DialInput): Promise<CallResult>;
  /** Deletes a call's room (hangs up); for calls whose `dial` activity was lost. */
  hangUp(input: { roomName: string }): Promise<void>;
  /**
   * Resolves an ambiguous dial by looking at the room (waiting out a ringing phone) and at what the
   * lost dial activity saw: ANSWERED, NO_ANSWER (rang until the ringing timeout) or UNKNOWN; never dials.
   */
  checkCall(input: CheckCallInput): Promise<CallCheckResult>;
  /**
   * Watches an answered call whose `dial` activity was lost, as `dial` does after the answer: ends
   * when the line is down; hangs up a grace period after the outcome is recorded, or at the longest
   * call; dispatches the agent again when none is in the room. Never dials.
   */
  watchCall(input: DialInput): Promise<CallEnd>;
  /** Hangs up (deletes the room), records the attempt's outcome, audits it, writes back final outcomes. */
  finishAttempt(input: FinishAttemptInput): Promise<FinishAttemptResult>;
  /** Audits an agent's outcome that its confirmation no longer takes (already decided, or closed). */
  recordLateOutcome(input: LateOutcomeInput): Promise<void>;
  /**
   * Waits (heartbeating) until a channel of the worker's trunk is leased to this attempt, within
   * the trunk's and the campaign's limits, fairly between practices, soonest deadline first. Gives
   * up at `giveUpAt` or when the campaign is cancelled; then the attempt's ledger reservation is
   * released (no call was placed). Idempotent: a retry finds its own lease.
   */
  acquireChannel(input: AcquireChannelInput): Promise<ChannelGrant>;
}

/**
 * An outcome the agent heard from the patient after its confirmation stopped taking outcomes. It is
 * never dropped: {@link recordLateOutcomeWorkflow} writes it to the audit log for the practice.
 */
export interface LateOutcomeInput {
  /** The confirmation the agent was dispatched for. */
  workflowId: string;
  attempt: number;
  outcome: CallOutcome;
  detail?: OutcomeDetail;
  /** Why the confirmation did not take it (the Update's rejection, or "workflow closed"). */
  reason: string;
  /** When the agent heard it, UTC ISO 8601. */
  reportedAt: string;
}

/** Id of the workflow recording one late outcome: one per attempt and outcome, so a retry records it once. */
export function lateOutcomeWorkflowId(input: Pick<LateOutcomeInput, 'workflowId' | 'attempt' | 'outcome'>): string {
  // `:` never occurs in an attempt number or an outcome: the parts are recoverable, the id injective.
  return `late-outcome:${input.workflowId}:a${input.attempt}:${input.outcome}`;
}

// ---------------------------------------------------------------------------------------------
// Pacing: channels (concurrent calls) and calls per second per trunk, held in the database across
// every worker process, campaign and single confirmation.
// ---------------------------------------------------------------------------------------------

/** Channel and call-rate limits (of a trunk, or a campaign's share of its trunk). */
export interface CallLimits {
  /** Most calls up at once (SIP channels). At least 1. */
  channels: number;
  /** Most new calls (INVITEs) per second; fractions allowed (0.5 = one call every 2 s). Above 0. */
  callsPerSecond: number;
}

/** Input of `acquireChannel`: wait for a channel on the worker's trunk for one attempt. */
export interface AcquireChannelInput {
  /** The confirmation; with `attempt`, the holder of the lease. */
  workflowId: string;
  attempt: number;
  /** Practice the call is for: practices sharing a trunk share its channels fairly. */
  practiceId: string;
  /** The appointment (its progress phase is recorded while it waits). */
  appointmentId?: string;
  /** Campaign the confirmation belongs to, if any: its own limits and pause apply too. */
  campaignId?: string;
  /** Calls for the appointment stop at this instant, UTC ISO 8601: sooner deadlines go first. */
  deadline: string;
  /** Stop waiting at this instant (the calling window closes), UTC ISO 8601. */
  giveUpAt: string;
}

/** Why `acquireChannel` returned without a channel. */
export enum ChannelRefusal {
  /** `giveUpAt` came first: the call is planned again (the window closed). */
  GAVE_UP = 'GAVE_UP',
  /** The confirmation's campaign was cancelled while it waited. */
  CAMPAIGN_CANCELLED = 'CAMPAIGN_CANCELLED',
}

/** Result of `acquireChannel`. */
export interface ChannelGrant {
  /** True: a channel is leased to this attempt until its call ends (the dial activity keeps the lease alive). */
  granted: boolean;
  /** Why not, when not granted. */
  refusal?: ChannelRefusal;
  /** How long the attempt waited for its channel, in ms. */
  waitedMs: number;
}

// ---------------------------------------------------------------------------------------------
// Campaigns: a practice's schedule export confirmed in one go. Contacts (health data) live in the
// database; the campaign workflow's history holds ids and counts only.
// ---------------------------------------------------------------------------------------------

/**
 * Workflow id of a campaign: `campaign:<practice id>:<campaign id>` (ids cannot contain `:`, so the
 * id is injective), one workflow per campaign ever.
 */
export function campaignWorkflowId(practiceId: string, campaignId: string): string {
  return `campaign:${practiceId}:${campaignId}`;
}

/** Where a campaign stands; mirrored in the `campaigns` table, which the channel gate reads. */
export enum CampaignState {
  /** Starting confirmations and placing calls. */
  RUNNING = 'RUNNING',
  /** No new calls: calls in progress finish, waiting confirmations hold at the channel gate. */
  PAUSED = 'PAUSED',
  /** Cancelled: confirmations not yet decided end CAMPAIGN_CANCELLED; the workflow ends once they have. */
  CANCELLED = 'CANCELLED',
  /** Every contact was started and every confirmation has ended. */
  COMPLETED = 'COMPLETED',
}

/** What a contact row of a campaign became. */
export enum ContactStatus {
  /** Imported, confirmation not started yet. */
  QUEUED = 'QUEUED',
  /** Its confirmation was started by this campaign. */
  STARTED = 'STARTED',
  /** Not called by this campaign: the appointment is (or was) confirmed by another campaign or a single start. */
  SKIPPED = 'SKIPPED',
  /** The campaign was cancelled before the confirmation started. */
  CANCELLED = 'CANCELLED',
}

/** Defaults of a campaign's settings. */
export const DEFAULT_CAMPAIGN_LIMITS: Readonly<CallLimits> = { channels: 3, callsPerSecond: 1 };
/** Most confirmations of one campaign running at once (bounds Temporal load and the campaign's bookkeeping). Default. */
export const DEFAULT_MAX_OUTSTANDING = 300;

/**
 * Input of {@link campaignWorkflow}: ids only — the practice, the contacts and the settings are in the
 * database, written by the import. No health data.
 */
export interface CampaignWorkflowInput {
  practiceId: string;
  campaignId: string;
  /** Most confirmations of this campaign running at once. Default {@link DEFAULT_MAX_OUTSTANDING}. */
  maxOutstanding?: number;
  /** Continue as new once a run's history passes this many events. Default 2,000 (Temporal warns at 10,240). */
  continueAsNewAfterEvents?: number;
  /** State carried over continue-as-new (absent on the first run). */
  carried?: CampaignCarry;
}

/** What a campaign run hands to the next across continue-as-new. */
export interface CampaignCarry {
  state: CampaignState;
  limits: CallLimits;
  /** Number of this run (1 on the first); shown in the Web UI details. */
  run: number;
  /** When the campaign started, UTC ISO 8601. */
  startedAt: string;
}

/** Who asked for a control and why (audited with the time). */
export interface ControlRequest {
  /** Who asked (user name, service name; at most 200 characters). Required. */
  actor: string;
  /** Why (at most 200 characters). */
  reason?: string;
}

/** Argument of {@link campaignLimitsUpdate}. */
export interface LimitsChange extends ControlRequest, Partial<CallLimits> {}

/** Argument of {@link campaignRowsAddedUpdate}: rows were imported into the running campaign. */
export interface RowsAdded extends ControlRequest {
  /** How many new contacts were queued (0 for a re-import). */
  added: number;
}

/** What a control Update returns. */
export interface ControlAck {
  state: CampaignState;
  limits: CallLimits;
  /** When the control took effect, UTC ISO 8601 (workflow time). */
  at: string;
}

/** Progress of a campaign, computed from the database (never from histories). No health data. */
export interface CampaignProgress {
  practiceId: string;
  campaignId: string;
  state: CampaignState;
  limits: CallLimits;
  /** Contacts imported (valid rows, duplicates excluded). */
  total: number;
  /** By what became of the contact row. */
  byStatus: Record<ContactStatus, number>;
  /** Started confirmations by phase ({@link Phase}). */
  byPhase: Partial<Record<Phase, number>>;
  /** Finished confirmations by final outcome. */
  byOutcome: Partial<Record<CallOutcome, number>>;
  /** Confirmations started and not ended. */
  outstanding: number;
  /** Calls up now (channels held by the campaign). */
  callsInProgress: number;
  /** Calls placed in the last 5 minutes, per minute. */
  callsPerMinute: number;
  /** Calls placed so far. */
  callsPlaced: number;
  /** Soonest next call of a waiting confirmation, UTC ISO 8601. */
  nextCallAt?: string;
  /** Estimated finish at the recent rate, UTC ISO 8601 (absent until there is a rate). */
  estimatedFinishAt?: string;
  /** When these counts were taken, UTC ISO 8601. */
  at: string;
}

/** What {@link campaignWorkflow} returns: counts only. */
export interface CampaignSummary {
  practiceId: string;
  campaignId: string;
  state: CampaignState.COMPLETED | CampaignState.CANCELLED;
  total: number;
  byStatus: Record<ContactStatus, number>;
  byOutcome: Partial<Record<CallOutcome, number>>;
  callsPlaced: number;
  startedAt: string;
  endedAt: string;
}

/** Answer of {@link campaignStatusQuery}: the workflow's last progress snapshot and its own state. */
export interface CampaignStatus {
  state: CampaignState;
  limits: CallLimits;
  /** Run number across continue-as-new. */
  run: number;
  /** The last progress snapshot (taken every few seconds while calls go on). */
  progress?: CampaignProgress;
}

/** Pause: no new calls; calls in progress finish; waiting confirmations hold. */
export const pauseCampaignUpdate = defineUpdate<ControlAck, [ControlRequest]>('pause');
/** Resume a paused campaign. */
export const resumeCampaignUpdate = defineUpdate<ControlAck, [ControlRequest]>('resume');
/** Cancel: confirmations not yet decided end CAMPAIGN_CANCELLED; calls in progress end normally. */
export const cancelCampaignUpdate = defineUpdate<ControlAck, [ControlRequest]>('cancel');
/** Change the campaign's channels and/or calls per second; takes effect at the next channel grant. */
export const campaignLimitsUpdate = defineUpdate<ControlAck, [LimitsChange]>('limits');
/** Rows were imported into the running campaign: start them in turn. */
export const campaignRowsAddedUpdate = defineUpdate<ControlAck, [RowsAdded]>('rowsAdded');
/**
 * One of the campaign's confirmations ended (sent by the worker when it writes a final outcome back):
 * the campaign counts again and starts the next ones without polling.
 */
export const confirmationEndedSignal = defineSignal<[]>('confirmationEnded');
/** State, limits and the latest progress. */
export const campaignStatusQuery = defineQuery<CampaignStatus>('campaignStatus');

/** Input of the campaign's `campaignTick` activity. */
export interface CampaignTickInput {
  practiceId: string;
  campaignId: string;
  /** Keep at most this many of the campaign's confirmations running (0 while paused or cancelled: start none). */
  maxOutstanding: number;
  /** Start at most this many confirmations in this tick. */
  maxStarts: number;
  /** The workflow's time, UTC ISO 8601. */
  now: string;
}

/** Result of `campaignTick`. */
export interface CampaignTickResult {
  /** Confirmations started by this tick. */
  started: number;
  /** Contacts skipped by this tick (their appointment is confirmed elsewhere). */
  skipped: number;
  progress: CampaignProgress;
}

/** Input of `recordCampaignControl`: write the campaign's state/limits and audit the control. */
export interface CampaignControlRecord {
  practiceId: string;
  campaignId: string;
  /** `pause`, `resume`, `cancel`, `limits`, `rowsAdded`, `start`, `complete`. */
  action: string;
  actor: string;
  reason?: string;
  state: CampaignState;
  limits: CallLimits;
  /** When it took effect (workflow time), UTC ISO 8601. */
  at: string;
  /** Makes a retried activity write the audit row once (workflow id, run id, sequence). */
  idempotencyKey: string;
  /** Extra audit facts (counts; no health data). */
  detail?: Record<string, unknown>;
}

/** Activities of the campaign workflow (`createCampaignActivities(deps)`). */
export interface CampaignActivities {
  /** The campaign's stored settings and state (the import wrote them). */
  loadCampaign(input: { practiceId: string; campaignId: string }): Promise<{ state: CampaignState; limits: CallLimits }>;
  /** Tops the campaign's running confirmations up to `maxOutstanding` (soonest appointment first) and counts progress. */
  campaignTick(input: CampaignTickInput): Promise<CampaignTickResult>;
  /** Writes state and limits to the campaigns table and appends the control to the campaign's audit log. */
  recordCampaignControl(input: CampaignControlRecord): Promise<void>;
  /**
   * Cancellation: queued contacts become CANCELLED; every running confirmation of the campaign is
   * signalled {@link campaignCancelledSignal}. Idempotent. Returns how many were signalled.
   */
  cancelCampaignConfirmations(input: { practiceId: string; campaignId: string }): Promise<{ signalled: number; cancelledQueued: number }>;
}

/**
 * Marks text that operators may read without decryption rights: the first character of every
 * workflow summary, details text and current-details line the project writes (U+2063, invisible in
 * the Web UI). The payload codec leaves such payloads unencrypted (see `isPublicPayload` in
 * src/codec.ts), so the Web UI shows them without the codec server. Only the project's own code
 * marks text, and only text built from ids, phases, attempt numbers, the practice and the next call
 * time — never a patient name, a phone number or an appointment time.
 */
export const PUBLIC_TEXT_MARK = '\u2063';

/** Longest text that may be marked public (a summary line, not a document). */
export const PUBLIC_TEXT_MAX_LENGTH = 400;

/**
 * `text` marked as readable without the codec (see {@link PUBLIC_TEXT_MARK}), cut to
 * {@link PUBLIC_TEXT_MAX_LENGTH} characters (cut, not thrown: a workflow task must not fail on it).
 */
export function publicText(text: string): string {
  const marked = text.startsWith(PUBLIC_TEXT_MARK) ? text : `${PUBLIC_TEXT_MARK}${text}`;
  return marked.slice(0, PUBLIC_TEXT_MAX_LENGTH);
}
