/**
 * Ports: the interfaces activities use to reach the outside world. The worker builds the real
 * implementations from config (LiveKit, PGlite/PostgreSQL); tests build the same real ones
 * against servers the test setup starts.
 */
import { DialFailureType } from './contracts';
import type {
  CallCheckResult,
  CallOutcome,
  ConsentState,
  DialInput,
  Phase,
  DialResult,
  OutcomeDetail,
  PlanDecision,
  RegisterConfirmationInput,
  TimeZoneCheck,
  TimeZoneOverrideInput,
} from './contracts';

/**
 * Data no retry can fix (an unknown time zone, a malformed time): activities turn it into a
 * non-retryable failure. The message names the field and the problem, never the value.
 */
export class InvalidDataError extends Error {
  override readonly name = 'InvalidDataError';
}

// ------------------------------------------------------------------------------- telephony

/** A dial that did not end in an answer, classified from the SIP response (see `classifyDialError`). */
export class DialError extends Error {
  override readonly name = 'DialError';
  constructor(
    readonly type: DialFailureType,
    message: string,
    readonly sipStatusCode?: number,
    readonly sipStatus?: string,
  ) {
    super(message);
  }
}

/** Places, inspects and ends calls (LiveKit SIP in production). */
export interface Telephony {
  /**
   * Creates the room, places exactly one call with `CreateSIPParticipant` (`waitUntilAnswered`) and,
   * once the patient answered, dispatches the agent to the room (a call never answered costs no
   * agent work). Resolves when answered; throws a {@link DialError} for SIP failures. Never retries
   * the call itself.
   */
  dial(input: DialInput, signal?: AbortSignal): Promise<DialResult>;
  /**
   * Work before the call that must not sit between its calls-per-second slot and the INVITE (the
   * room's creation: a request whose latency varies with the server's load). Optional; `dial` does
   * it itself when it was not done.
   */
  prepareCall?(input: DialInput): Promise<void>;
  /** Looks at the attempt's room and its SIP participant. Never dials. */
  checkCall(roomName: string): Promise<CallCheckResult>;
  /** Deletes the room (hangs up every leg). Succeeds when the room is already gone. */
  hangUp(roomName: string): Promise<void>;
  /**
   * Makes sure an agent serves an answered call: `present` when one is in the room; `on-its-way`
   * when a dispatch of it has a live job, or is still being offered to the agent workers (never a
   * duplicate job for an agent merely slow to join); else dispatches it (again, with the same
   * metadata) and resolves `dispatched` — the dispatch is lost when no agent worker can take it at
   * that moment. Optional: scripted phones have no agents.
   */
  ensureAgent?(input: Pick<DialInput, 'roomName' | 'agentMetadata'>): Promise<AgentPresence>;
}

/** What {@link Telephony.ensureAgent} found (or did). */
export type AgentPresence = 'present' | 'on-its-way' | 'dispatched';

// ------------------------------------------------------------------------------- database

/** Calling rules the planning activity applies (worker config). */
export interface CallingRules {
  /** Rule set name recorded in the audit table (`US-TCPA-HEALTHCARE`). */
  ruleSet: string;
  /** Rule set version recorded in the audit table. */
  ruleSetVersion: string;
  /** Office-hours days, ISO weekday numbers (1 = Monday … 7 = Sunday). Default Mon–Sat. */
  days: number[];
  /** Local start of the calling window, `HH:mm`. Default `09:00`; never earlier than `08:00`. */
  start: string;
  /** Local end of the calling window, `HH:mm` (exclusive). Default `19:00`; never later than `21:00`. */
  end: string;
  /** Calls to one number per patient-local calendar day, across all workflows. Default 1. */
  maxCallsPerDay: number;
  /** Calls to one number per rolling 7 × 24 h, across all workflows. Default 3. */
  maxCallsPerWeek: number;
}

/** A cap reservation request: reserve attempt `attempt` of `workflowId` on `phone` at `at`. */
export interface ReserveAttemptInput {
  workflowId: string;
  attempt: number;
  appointmentId: string;
  phone: string;
  /** When the call is placed (workflow time). */
  at: Date;
  /** Patient-local calendar day of `at`, `YYYY-MM-DD`. */
  localDate: string;
  maxCallsPerDay: number;
  maxCallsPerWeek: number;
}

/** Result of a reservation. Idempotent: reserving the same (workflow, attempt) twice returns the first result. */
/** One call to the number as the ledger counts it for the caps. */
export interface LedgerCall {
  /** When the attempt was reserved (placed). */
  placedAt: Date;
  /** The patient-local day it counts for, `YYYY-MM-DD`. */
  localDate: string;
}

export interface ReserveAttemptResult {
  reserved: boolean;
  /** Calls to the number on `localDate` (including this one when reserved). */
  dayCount: number;
  /** Calls to the number in the 7 days before `at` (including this one when reserved). */
  weekCount: number;
  /** Oldest call counted in the week, when the week is full (a slot opens 7 days after it). */
  oldestInWeek?: Date;
}

/** One audit row: a decision about an attempt. Never updated or deleted. */
export interface AuditEntry {
  /** Makes retried activity executions write the row once. */
  idempotencyKey: string;
  workflowId: string;
  runId: string;
  appointmentId: string;
  practiceId: string;
  phone: string;
  attempt: number;
  decidedAt: Date;
  /** Decision time as the patient's wall clock, ISO 8601 with offset. */
  decidedAtLocal: string;
  timeZone: string;
  /** Where the zone came from and the tz database version (`request; tzdata 2025b`). */
  timeZoneSource: string;
  ruleSet: string;
  ruleSetVersion: string;
  consentState: ConsentState | null;
  dayCount: number | null;
  weekCount: number | null;
  /** A {@link PlanDecision}, `OUTCOME`, or `LATE_OUTCOME` (an agent's outcome after the confirmation decided). */
  decision: PlanDecision | 'OUTCOME' | 'LATE_OUTCOME';
  outcome: CallOutcome | null;
  sipStatusCode: number | null;
  sipStatus: string | null;
  detail: Record<string, unknown> | null;
  /** Planning decisions: the zones the calling window was checked in and which decided. */
  timeZones?: TimeZoneCheck | null;
}

/** Stored audit row. */
export interface AuditRow extends AuditEntry {
  id: number;
}

/** The scheduling-system port and the compliance records (PGlite or PostgreSQL). */
/** An appointment's new phase, written with the audit row that explains it (one statement). */
export interface PhaseChange {
  phase: Phase;
  /** When the next call is due (a wait's end); none clears it. */
  nextCallAt?: Date;
}

export interface ConfirmationStore {
  /** Applies pending migrations (idempotent, safe with several processes). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Upserts the appointment row and its workflow id. */
  registerConfirmation(input: RegisterConfirmationInput): Promise<void>;
  /** The workflow ids of confirmations of `phone` that have no final outcome yet. */
  activeWorkflowIdsForPhone(phone: string, practiceId?: string): Promise<string[]>;
  /** Writes a final outcome back to the appointment. */
  writeBack(practiceId: string, appointmentId: string, outcome: CallOutcome, detail?: OutcomeDetail): Promise<void>;
  /** The appointment row as stored (tests and operators). */
  getAppointment(practiceId: string, appointmentId: string): Promise<StoredAppointment | undefined>;
  /** The appointment row a confirmation workflow registered. */
  appointmentOfWorkflow(workflowId: string): Promise<StoredAppointment | undefined>;

  /** Records consent given (or revoked) by the patient for calls from the practice. */
  recordConsent(input: { practiceId: string; phone: string; patientId?: string; granted: boolean; source: string }): Promise<void>;
  /** Consent state: DO_NOT_CALL wins over everything, then the practice's consent record. */
  consentState(practiceId: string, phone: string): Promise<ConsentState>;
  /**
   * Records a practice's time-zone override for a number (`zone`), or its withdrawal (`zone: null`).
   * Appended, never overwritten (the rows are the override's audit trail); returns the row's id.
   */
  recordTimeZoneOverride(input: TimeZoneOverrideInput): Promise<number>;
  /** The override in force for the practice and number: the latest record, unless it withdrew one. */
  timeZoneOverride(practiceId: string, phone: string): Promise<TimeZoneOverride | undefined>;
  /** Both facts a plan reads before it may call — consent state and the override in force — in one read. */
  callingFacts(practiceId: string, phone: string): Promise<{ consent: ConsentState; override: TimeZoneOverride | undefined }>;
  /** Every override record of the practice and number, oldest first (set and withdrawn). */
  listTimeZoneOverrides(practiceId: string, phone: string): Promise<TimeZoneOverrideRecord[]>;
  /** Puts a number on the do-not-call list (idempotent; keeps the first entry). */
  addDoNotCall(phone: string, source: string, reason: string): Promise<void>;

  /** Atomically reserves a call within the per-number caps (two racers for the last slot: one wins). */
  reserveAttempt(input: ReserveAttemptInput): Promise<ReserveAttemptResult>;
  /** The number's ledger rows (calls counted by the caps) placed after `since`. */
  callsToNumber(phone: string, since: Date): Promise<LedgerCall[]>;
  /** The outcome recorded for a reserved attempt, or null while there is none. */
  attemptOutcome(workflowId: string, attempt: number): Promise<CallOutcome | null>;
  /** Records what came of a reserved attempt. */
  recordAttemptOutcome(workflowId: string, attempt: number, outcome: CallOutcome, sipStatusCode?: number): Promise<void>;

  /**
   * Drops the reservation of an attempt that was never placed (no outcome recorded): it gave up
   * waiting for a channel. Returns whether a row went.
   */
  releaseReservation(workflowId: string, attempt: number): Promise<boolean>;
  /** Where the appointment's confirmation stands (progress without histories), and its next call when waiting. */
  recordPhase(practiceId: string, appointmentId: string, phase: Phase, nextCallAt?: Date): Promise<void>;

  /**
   * Appends an audit row (once per idempotency key); with `then`, also moves the appointment to that
   * phase, in the same statement (a retried call moves it again: idempotent).
   */
  appendAudit(entry: AuditEntry, then?: PhaseChange): Promise<void>;
  /** Audit rows, oldest first. */
  listAudit(filter?: { workflowId?: string; appointmentId?: string }): Promise<AuditRow[]>;
}

/** An appointment row. */
export interface StoredAppointment {
  practiceId: string;
  appointmentId: string;
  patientId: string;
  phone: string;
  timeZone: string;
  startsAt: Date;
  workflowId: string;
  /** `PENDING` until a final outcome is written back, then `DONE`. */
  status: 'PENDING' | 'DONE';
  outcome: CallOutcome | null;
  outcomeDetail: OutcomeDetail | null;
}

/** A time-zone override in force. */
export interface TimeZoneOverride {
  id: number;
  zone: string;
  reason: string;
  actor: string;
  recordedAt: Date;
}

/** One override record: set (`zone`) or withdrawn (`zone: null`). */
export interface TimeZoneOverrideRecord extends Omit<TimeZoneOverride, 'zone'> {
  zone: string | null;
}
