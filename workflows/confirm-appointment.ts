/**
 * One appointment confirmation: decide whether and when it may call, place the call, wait for the
 * voice agent's verdict, retry when nobody answers, write the result back.
 *
 * Deterministic code only: every fact about the outside world (consent, caps, the calling window in
 * the patient's zone, the call itself) comes from an activity, so a tz-database or rule change can
 * never break the replay of a running confirmation.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  sleep,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  appointmentCancelledSignal,
  replanSignal,
  appointmentMovedSignal,
  campaignCancelledSignal,
  ChannelRefusal,
  attemptRoomName,
  CallCheckState,
  confirmationWorkflowId,
  CallOutcome,
  DEFAULT_CALL_POLICY,
  DialFailureType,
  FINAL_OUTCOMES,
  optOutSignal,
  outcomeUpdate,
  Phase,
  PlanDecision,
  SearchAttr,
  statusQuery,
  type AgentJobMetadata,
  type AttemptRecord,
  type CallPolicy,
  type ConfirmationActivities,
  type ConfirmationRequest,
  type ConfirmationResult,
  type ConfirmationStatus,
  type DialFailureDetails,
  type DialInput,
  type DialProgress,
  type FinishAttemptResult,
  type OutcomeDetail,
  type OutcomeReport,
  type PlanAttemptResult,
  publicText,
} from '../src/contracts';
import {
  INVALID_REPORT_FAILURE,
  INVALID_REQUEST_FAILURE,
  parseConfirmationRequest,
  validateFutureTime,
  validateOutcomeReport,
  ValidationError,
} from '../src/validation';

/** Database work: local activities, so a happy path stays small in history (one marker each). */
const db = proxyLocalActivities<ConfirmationActivities>({
  startToCloseTimeout: '30s',
  // Unbounded on purpose: a database outage is waited out (the confirmation keeps its place and its
  // audit trail) rather than failing patients' confirmations. Errors that can never succeed — bad
  // data, constraint violations — are non-retryable ApplicationFailures from the activities.
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2 },
});

/**
 * After its verdict the agent says goodbye and ends the call itself; should the line still be up
 * this long after the outcome was recorded, the room is deleted.
 */
const HANGUP_GRACE_SECONDS = 10;

/** Seconds between the answer and the SIP leg's forced end that the workflow still waits for a verdict. */
const SIP_TO_DIAL_MARGIN_SECONDS = 60;

const DIAL_FAILURE_OUTCOME: Record<Exclude<DialFailureType, DialFailureType.UNKNOWN>, CallOutcome> = {
  [DialFailureType.BUSY]: CallOutcome.BUSY,
  [DialFailureType.NO_ANSWER]: CallOutcome.NO_ANSWER,
  [DialFailureType.DECLINED]: CallOutcome.DECLINED,
  [DialFailureType.INVALID_NUMBER]: CallOutcome.INVALID_NUMBER,
  [DialFailureType.TRUNK_ERROR]: CallOutcome.CALL_FAILED,
  // Refused before any INVITE, and the dial activity's own retries ran out: the call could not be placed.
  [DialFailureType.NOT_PLACED]: CallOutcome.CALL_FAILED,
};

const PLAN_STOPS: Partial<Record<PlanDecision, CallOutcome>> = {
  [PlanDecision.NO_CONSENT]: CallOutcome.NO_CONSENT,
  [PlanDecision.DO_NOT_CALL]: CallOutcome.OPTED_OUT,
  [PlanDecision.EXPIRED]: CallOutcome.EXPIRED,
  [PlanDecision.CAP_REACHED]: CallOutcome.CAP_REACHED,
};

/** Confirms one appointment by phone. See the README for the whole flow. */
export async function confirmAppointmentWorkflow(input: ConfirmationRequest): Promise<ConfirmationResult> {
  const info = workflowInfo();
  // Starts that bypass the TypeScript client (other SDKs, the temporal CLI) get the client's rules
  // here, once, against the start time: a bad request fails the run at once, naming every field.
  const request = startRequest(input, info.startTime, info.unsafe.isReplaying);
  // One workflow per appointment holds only while every start uses the derived id: a start under
  // any other id (another SDK, the temporal CLI) fails at once, naming the id to use. Workflows
  // started under the old `confirm-<practice>-<appointment>` scheme replay without the check: the
  // patch marker is written only when the check runs in a new execution.
  const expectedId = confirmationWorkflowId(request.practiceId, request.appointmentId);
  if (info.workflowId !== expectedId && patched('canonical-workflow-id')) {
    throw ApplicationFailure.create({
      type: 'INVALID_WORKFLOW_ID',
      nonRetryable: true,
      message: `workflowId: a confirmation must be started with the id confirm:<practiceId>:<appointmentId> (here "${expectedId}"), so that each appointment has one confirmation`,
    });
  }
  const policy: CallPolicy = { ...DEFAULT_CALL_POLICY, ...request.policy };

  // ---- state (everything the status query shows is derived from these)
  let appointmentStart = request.appointmentStart;
  let deadlineMs = deadlineOf(appointmentStart, policy);
  let phase = Phase.PLANNING;
  let nextCallAt: string | undefined;
  let finalOutcome: CallOutcome | undefined;
  let finalDetail: OutcomeDetail | undefined;
  const attempts: AttemptRecord[] = [];
  /** The call that is up (or being placed): the only attempt the agent may report on (0: none). */
  const call: { attempt: number; report?: OutcomeReport } = { attempt: 0 };
  /** The latest attempt placed (stays set while it is being recorded, unlike `call.attempt`). */
  let latestAttempt = 0;
  let optOutRequested = false;
  let cancelRequested = false;
  /** The campaign that started this confirmation was cancelled: no further call (a call in progress ends normally). */
  let campaignCancelRequested = false;
  let replanRequested = false;
  /** The appointment row needs (re)recording: before the first plan and after a move. */
  let appointmentChanged = true;
  let voicemailLeft = false;
  let decisionSeq = 0;

  const stopRequested = (): boolean => optOutRequested || cancelRequested;
  /** Stops every wait except a call in progress: what ends the confirmation before its next call. */
  const stopBeforeCall = (): boolean => stopRequested() || campaignCancelRequested;
  /** Temporal cancellation (Web UI, `temporal workflow cancel`, `handle.cancel()`) was requested. */
  const root = CancellationScope.current();
  const cancellationRequested = (): boolean => root.consideredCancelled;
  /**
   * The attempt reserved in the ledger whose outcome is not recorded yet, and its room once dialed:
   * what a cancellation must hang up and record.
   */
  let open: { attempt: number; plan: PlanAttemptResult; roomName: string; dialedAt: string; waitingForChannel?: true } | undefined;
  /** Room of the call placed last, until its call is over (the goodbye may outlast the recording). */
  let liveRoom: string | undefined;

  // ---- messages
  setHandler(statusQuery, (): ConfirmationStatus => ({
    phase,
    attempt: latestAttempt,
    nextCallAt,
    lastOutcome: attempts.at(-1)?.outcome,
    finalOutcome,
    deadline: new Date(deadlineMs).toISOString(),
    appointmentStart,
    attempts: [...attempts],
  }));

  setHandler(
    outcomeUpdate,
    (r) => {
      // Only the report's own fields are kept (the validator refused anything else).
      call.report = { attempt: r.attempt, outcome: r.outcome, ...(r.detail === undefined ? {} : { detail: r.detail }) };
      return { accepted: true, attempt: r.attempt, outcome: r.outcome, final: finalOutcomeOf(r.outcome, r.attempt) !== undefined };
    },
    {
      // Rejected reports leave no trace in history; the agent gets the reason. The whole report is
      // checked against the schema first (types, allowed keys, bounded sizes): a malformed report is
      // refused before it can reach history, the ledger or the audit table.
      validator: (r) => {
        try {
          validateOutcomeReport(r);
        } catch (err) {
          if (!(err instanceof ValidationError)) throw err;
          throw ApplicationFailure.create({ type: INVALID_REPORT_FAILURE, message: err.message, nonRetryable: true, details: [err.problems] });
        }
        if (finalOutcome !== undefined) throw new Error(`outcome: the confirmation already ended with ${finalOutcome}`);
        if (cancellationRequested()) throw new Error('outcome: the confirmation was cancelled');
        if (call.attempt === 0 || r.attempt !== call.attempt) {
          throw new Error(`attempt: ${String(r.attempt)} is not the call in progress (${call.attempt ? `attempt ${call.attempt}` : 'no call is up'})`);
        }
        if (call.report !== undefined) throw new Error(`outcome: attempt ${call.attempt} already has outcome ${call.report.outcome}`);
      },
    },
  );

  setHandler(optOutSignal, () => {
    optOutRequested = true;
  });
  setHandler(appointmentCancelledSignal, () => {
    cancelRequested = true;
  });
  setHandler(replanSignal, () => {
    replanRequested = true;
  });
  setHandler(campaignCancelledSignal, () => {
    campaignCancelRequested = true;
  });
  setHandler(appointmentMovedSignal, (signal) => {
    // A signal cannot be rejected; one the client API would refuse is logged (problem only, never
    // the value) and ignored. No destructuring: a signal sent without an argument must not throw.
    const raw = (signal as { appointmentStart?: unknown } | undefined)?.appointmentStart;
    let moved: string;
    if (patched(CHECKED_MOVE_PATCH)) {
      try {
        moved = validateFutureTime('appointmentStart', raw, new Date());
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        log.warn('appointmentMoved ignored', { problem: err.message });
        return;
      }
    } else {
      // A move this run took before the client's rules applied here (replay of an older history).
      if (typeof raw !== 'string' || Number.isNaN(Date.parse(raw))) {
        log.warn('appointmentMoved ignored: appointmentStart is not an ISO 8601 time');
        return;
      }
      moved = raw;
    }
    appointmentStart = moved;
    deadlineMs = deadlineOf(moved, policy);
    replanRequested = true;
    appointmentChanged = true;
  });

  /**
   * The confirmation's final outcome if attempt `attempt` ending with `outcome` ends it, else undefined.
   * One voicemail message per appointment: reaching a machine again ends it as VOICEMAIL_LEFT, and so
   * does running out of attempts after a message was left.
   */
  function finalOutcomeOf(outcome: CallOutcome, attempt: number): CallOutcome | undefined {
    if (FINAL_OUTCOMES.has(outcome)) return outcome;
    const machine = outcome === CallOutcome.VOICEMAIL_LEFT || outcome === CallOutcome.VOICEMAIL_REACHED;
    if (machine && (voicemailLeft || outcome === CallOutcome.VOICEMAIL_REACHED)) return CallOutcome.VOICEMAIL_LEFT;
    if (attempt >= policy.maxAttempts) return voicemailLeft || machine ? CallOutcome.VOICEMAIL_LEFT : outcome;
    return undefined;
  }

  // ---- search attributes: upsert only what changed (each upsert is a history event)
  const shown: { phase?: string; outcome?: string; nextCallAt?: string | null } = {};
  function publish(update: { phase: Phase; nextCallAt?: string; outcome?: CallOutcome }): void {
    phase = update.phase;
    nextCallAt = update.nextCallAt;
    const pairs: SearchAttributeUpdatePair[] = [];
    if (info.typedSearchAttributes.get(SearchAttr.AppointmentId) === undefined && shown.phase === undefined) {
      // Started without search attributes (e.g. from the temporal CLI): add the identifying ones once.
      pairs.push({ key: SearchAttr.AppointmentId, value: request.appointmentId });
      pairs.push({ key: SearchAttr.PracticeId, value: request.practiceId });
      if (request.campaignId) pairs.push({ key: SearchAttr.CampaignId, value: request.campaignId });
    }
    if (shown.phase !== update.phase) pairs.push({ key: SearchAttr.Phase, value: update.phase });
    const next = update.nextCallAt ?? null;
    if ((shown.nextCallAt ?? null) !== next) {
      pairs.push({ key: SearchAttr.NextCallAt, value: next === null ? null : new Date(next) });
    }
    if (update.outcome && shown.outcome !== update.outcome) pairs.push({ key: SearchAttr.Outcome, value: update.outcome });
    if (pairs.length > 0) upsertSearchAttributes(pairs);
    shown.phase = update.phase;
    shown.nextCallAt = next;
    if (update.outcome) shown.outcome = update.outcome;
  }

  /** Durable, interruptible wait: a move re-plans at once, an opt-out or cancellation stops. */
  async function waitUntil(untilMs: number): Promise<void> {
    const ms = untilMs - Date.now();
    if (ms <= 0) return;
    replanRequested = false;
    await condition(() => replanRequested || stopBeforeCall(), ms);
  }

  const registration = () => ({
    workflowId: info.workflowId,
    appointmentId: request.appointmentId,
    practiceId: request.practiceId,
    patientId: request.patientId,
    phone: request.phone,
    patientTimeZone: request.patientTimeZone,
    appointmentStart,
    ...(request.campaignId ? { campaignId: request.campaignId } : {}),
  });

  /** Who and what an audited decision is about; each decision gets the next sequence number (idempotent audit rows). */
  const decisionSubject = () => ({
    workflowId: info.workflowId,
    runId: info.runId,
    decisionSeq: ++decisionSeq,
    appointmentId: request.appointmentId,
    practiceId: request.practiceId,
    phone: request.phone,
    patientTimeZone: request.patientTimeZone,
    ...(request.campaignId ? { campaignId: request.campaignId } : {}),
  });

  /** Ends the confirmation without a call in progress (no consent, expired, opted out, cancelled, …). */
  async function endWithoutCall(outcome: CallOutcome): Promise<void> {
    finalOutcome = outcome;
    await record({
      ...decisionSubject(),
      attempt: 0,
      outcome,
      finalOutcome: outcome,
      now: new Date().toISOString(),
    });
  }

  /**
   * Records through `finishAttempt` in a non-cancellable scope: once an outcome is decided it is
   * written (ledger, audit, write-back) even if a cancellation arrives meanwhile.
   */
  function record(input: Parameters<ConfirmationActivities['finishAttempt']>[0]): Promise<FinishAttemptResult | undefined> {
    return CancellationScope.nonCancellable(() => db.finishAttempt(input));
  }

  /**
   * After a Temporal cancellation: hang up a call in progress and record the attempt and the
   * confirmation as CONFIRMATION_CANCELLED (an outcome the agent reported before the cancellation
   * is kept). Runs in a non-cancellable scope. Returns false when the confirmation had already been
   * decided (its outcome stands; only the call is hung up).
   */
  async function recordCancellation(): Promise<boolean> {
    if (finalOutcome !== undefined) {
      if (liveRoom !== undefined) await db.hangUp({ roomName: liveRoom });
      return false;
    }
    // Waiting for a channel: the attempt was reserved, never placed.
    const notPlaced = open?.waitingForChannel === true;
    const heard = open !== undefined && call.attempt === open.attempt ? call.report : undefined;
    const attemptOutcome = heard?.outcome ?? CallOutcome.CONFIRMATION_CANCELLED;
    const attempt = open?.attempt ?? 0;
    finalOutcome = (heard && finalOutcomeOf(heard.outcome, attempt)) ?? CallOutcome.CONFIRMATION_CANCELLED;
    finalDetail = heard?.detail;
    call.attempt = 0;
    await db.finishAttempt({
      ...decisionSubject(),
      attempt,
      roomName: open?.roomName ?? liveRoom,
      outcome: attempt === 0 ? finalOutcome : attemptOutcome,
      finalOutcome,
      detail: heard?.detail,
      ...(notPlaced ? { notPlaced } : {}),
      now: new Date().toISOString(),
    });
    if (open !== undefined && !notPlaced) {
      attempts.push({
        attempt,
        roomName: open.roomName,
        dialedAt: open.dialedAt,
        dialedAtLocal: open.plan.nowLocal,
        endedAt: new Date().toISOString(),
        outcome: attemptOutcome,
      });
    }
    open = undefined;
    publish({ phase: Phase.DONE, outcome: finalOutcome });
    setCurrentDetails(publicText(`cancelled: ${finalOutcome}`));
    return true;
  }

  // ---- the confirmation
  let notBeforeMs: number | undefined;
  /** Set by a call whose outcome recorded a backoff: the loop waits until then, then plans. */
  let backoffUntilMs: number | undefined;
  /** Later than the backoff: when the window and caps next allow a call (the loop waits until then). */
  let nextCallAtMs: number | undefined;

  try {
    await confirm();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Temporal cancellation: hang up and record first, then end cancelled (unless already decided).
    if (await CancellationScope.nonCancellable(recordCancellation)) throw err;
  }

  publish({ phase: Phase.DONE, outcome: finalOutcome });
  setCurrentDetails(publicText(`done: ${finalOutcome}`));
  return {
    appointmentId: request.appointmentId,
    outcome: finalOutcome!,
    attempts,
    decidedAt: new Date().toISOString(),
    detail: finalDetail,
  };

  /** Plans, waits and calls until the confirmation is decided. */
  async function confirm(): Promise<void> {
  while (finalOutcome === undefined) {
    // The plan below is not cancellable (it may reserve a call): never start one once cancelled.
    if (cancellationRequested()) throw new CancelledFailure('confirmation cancelled');
    if (cancelRequested) {
      await endWithoutCall(CallOutcome.APPOINTMENT_CANCELLED);
      break;
    }
    if (optOutRequested) {
      await endWithoutCall(CallOutcome.OPTED_OUT);
      break;
    }
    if (campaignCancelRequested) {
      await endWithoutCall(CallOutcome.CAMPAIGN_CANCELLED);
      break;
    }
    const attempt = attempts.length + 1;
    // Not cancellable: a plan that reserved the call in the ledger is always seen (and then recorded).
    const plan = await CancellationScope.nonCancellable(() => db.planAttempt({
      ...decisionSubject(),
      attempt,
      patientId: request.patientId,
      deadline: new Date(deadlineMs).toISOString(),
      now: new Date().toISOString(),
      notBefore: notBeforeMs === undefined ? undefined : new Date(notBeforeMs).toISOString(),
      // Recorded in the same activity as the plan: one history event fewer per confirmation.
      appointment: appointmentChanged ? registration() : undefined,
      // A free channel is taken by the plan itself: no extra activity on the common path.
      tryChannel: true,
    }));
    appointmentChanged = false;

    const stop = PLAN_STOPS[plan.decision];
    if (stop !== undefined) {
      await endWithoutCall(stop);
      break;
    }
    if (plan.decision === PlanDecision.WAIT_WINDOW || plan.decision === PlanDecision.WAIT_CAP) {
      const until = plan.waitUntil!;
      const waitPhase = plan.decision === PlanDecision.WAIT_CAP ? Phase.WAITING_FOR_CAP : Phase.WAITING_FOR_WINDOW;
      publish({ phase: waitPhase, nextCallAt: until });
      setCurrentDetails(
        publicText(
          plan.decision === PlanDecision.WAIT_CAP
            ? `waiting for the per-number call limit to allow attempt ${attempt} until ${plan.waitUntilLocal}`
            : `waiting for calling window until ${plan.waitUntilLocal} (attempt ${attempt} of ${policy.maxAttempts})`,
        ),
      );
      await waitUntil(Date.parse(until));
      continue;
    }

    // DIAL: the attempt is reserved in the ledger.
    // Calls wait for a channel of the trunk (the trunk's and the campaign's limits across every
    // worker, campaign and single confirmation; a paused campaign holds here). The branch follows the
    // plan's recorded result, so no patch is needed: a plan recorded before the gate existed has no
    // `channelGranted` and replays without it.
    if (plan.channelGranted === false) {
      const grant = await waitForChannel(attempt, plan);
      if (grant === 'stopped') continue; // the loop's checks end the confirmation (reservation recorded)
      if (grant === ChannelRefusal.CAMPAIGN_CANCELLED) {
        campaignCancelRequested = true;
        continue;
      }
      if (grant === ChannelRefusal.GAVE_UP) continue; // the window closed while waiting: plan again
    }
    // placeCall marks the attempt `open` before it awaits anything.
    const placed = await placeCall(attempt, plan);
    attempts.push(placed);
    if (placed.outcome === CallOutcome.VOICEMAIL_LEFT) voicemailLeft = true;
    if (finalOutcome !== undefined) break;
    if (backoffUntilMs === undefined) {
      // Planned next (histories from before the backoff wait, a backoff past the deadline, a stop).
      notBeforeMs = Date.now() + backoffSeconds(policy, attempt) * 1000;
      continue;
    }
    notBeforeMs = backoffUntilMs;
    const wakeAtMs = nextCallAtMs ?? notBeforeMs;
    backoffUntilMs = undefined;
    nextCallAtMs = undefined;
    publish({ phase: Phase.WAITING_FOR_WINDOW, nextCallAt: new Date(wakeAtMs).toISOString() });
    setCurrentDetails(publicText(`waiting to call again: attempt ${attempt + 1} of ${policy.maxAttempts} not before ${new Date(wakeAtMs).toISOString()}`));
    await waitUntil(wakeAtMs);
  }
  }

  /**
   * Waits for a channel for the reserved attempt, until the calling window closes. Returns true when
   * granted; a refusal (the activity released the reservation: no call was placed); or `stopped` when
   * the confirmation was told to stop meanwhile (the reservation is recorded as not placed).
   */
  async function waitForChannel(attempt: number, plan: PlanAttemptResult): Promise<true | ChannelRefusal | 'stopped'> {
    const giveUpAtMs = Math.min(plan.windowEndsAt ? Date.parse(plan.windowEndsAt) : deadlineMs, deadlineMs);
    const roomName = attemptRoomName(info.workflowId, attempt);
    // Reserved: a Temporal cancellation while waiting records this attempt (and releases its lease).
    open = { attempt, plan, roomName, dialedAt: new Date().toISOString(), waitingForChannel: true };
    publish({ phase: Phase.WAITING_FOR_CHANNEL });
    setCurrentDetails(publicText(`waiting for a free channel (attempt ${attempt} of ${policy.maxAttempts})`));
    const gate = proxyActivities<ConfirmationActivities>({
      // Waits as long as the window is open (the activity returns at giveUpAt); a lost worker is
      // noticed by the heartbeat, and the wait resumes on another (the lease is per attempt).
      startToCloseTimeout: `${Math.max(60, Math.ceil((giveUpAtMs - Date.now()) / 1000) + 60)}s`,
      heartbeatTimeout: '15s',
      retry: { initialInterval: '1s', maximumInterval: '10s', backoffCoefficient: 2 },
    });
    let grant: Awaited<ReturnType<ConfirmationActivities['acquireChannel']>> | undefined;
    const scope = new CancellationScope();
    const waiting = scope
      .run(() =>
        gate.acquireChannel({
          workflowId: info.workflowId,
          attempt,
          practiceId: request.practiceId,
          appointmentId: request.appointmentId,
          campaignId: request.campaignId,
          deadline: new Date(deadlineMs).toISOString(),
          giveUpAt: new Date(giveUpAtMs).toISOString(),
        }),
      )
      .then(
        (g) => {
          grant = g;
        },
        (err: unknown) => {
          // Cut short by a stop below (or the confirmation's cancellation, handled by the caller).
          if (!isCancellation(err)) throw err;
        },
      );
    await condition(() => grant !== undefined || stopBeforeCall());
    if (grant === undefined) {
      scope.cancel();
      await waiting;
      // Stopped while waiting: the attempt was reserved but never placed. Its reservation is released
      // (and a lease granted meanwhile); the loop then ends the confirmation.
      await record({
        ...decisionSubject(),
        attempt,
        outcome: CallOutcome.CALL_FAILED,
        notPlaced: true,
        now: new Date().toISOString(),
      });
      open = undefined;
      return 'stopped';
    }
    await waiting;
    open = undefined;
    if (grant.granted) return true;
    return grant.refusal ?? ChannelRefusal.GAVE_UP;
  }

  /** One call: dial, await the agent's verdict, hang up and record. Decides `finalOutcome` when it ends the confirmation. */
  async function placeCall(attempt: number, plan: PlanAttemptResult): Promise<AttemptRecord> {
    const roomName = attemptRoomName(info.workflowId, attempt);
    const dialedAt = new Date().toISOString();
    open = { attempt, plan, roomName, dialedAt };
    liveRoom = roomName;
    call.attempt = attempt;
    latestAttempt = attempt;
    call.report = undefined;
    publish({ phase: Phase.CALLING });
    setCurrentDetails(publicText(`calling: attempt ${attempt} of ${policy.maxAttempts}`));

    // At most one call per attempt: no retries, and an ambiguous end is resolved by looking, never by
    // redialing. The dial activity stays with the call until it ends (heartbeating), so the workflow
    // needs no timer of its own for the call.
    const calls = proxyActivities<ConfirmationActivities>({
      startToCloseTimeout: `${policy.ringingTimeoutSeconds + policy.maxCallDurationSeconds + policy.outcomeMarginSeconds + HANGUP_GRACE_SECONDS + SIP_TO_DIAL_MARGIN_SECONDS}s`,
      heartbeatTimeout: '15s',
      retry: { maximumAttempts: 1 },
    });
    // Watches an answered call whose dial activity was lost; only looks and hangs up, so it may retry.
    const watches = proxyActivities<ConfirmationActivities>({
      startToCloseTimeout: `${policy.maxCallDurationSeconds + policy.outcomeMarginSeconds + HANGUP_GRACE_SECONDS + SIP_TO_DIAL_MARGIN_SECONDS}s`,
      heartbeatTimeout: '15s',
      retry: { initialInterval: '2s', maximumAttempts: 3 },
    });
    const checks = proxyActivities<ConfirmationActivities>({
      startToCloseTimeout: `${policy.ringingTimeoutSeconds + SIP_TO_DIAL_MARGIN_SECONDS}s`,
      heartbeatTimeout: '15s',
      retry: { initialInterval: '2s', maximumAttempts: 5 },
    });

    // Read through a function: the Update handler sets it while this function awaits.
    const verdict = (): OutcomeReport | undefined => call.report;
    let failed: CallOutcome | undefined;
    let sipStatusCode: number | undefined;
    let sipStatus: string | undefined;
    /** The dial activity was lost while the call was answered: the workflow must hang up itself. */
    let orphanedCall = false;
    /** That orphaned call was watched by `watchCall` until it ended (no workflow timer needed). */
    let watched = false;
    let settled = false;
    const dialInput: DialInput = {
      workflowId: info.workflowId,
      attempt,
      roomName,
      phone: request.phone,
      ringingTimeoutSeconds: policy.ringingTimeoutSeconds,
      maxCallDurationSeconds: policy.maxCallDurationSeconds,
      outcomeMarginSeconds: policy.outcomeMarginSeconds,
      hangupGraceSeconds: HANGUP_GRACE_SECONDS,
      agentMetadata: agentMetadata(attempt),
    };
    const dialing = calls
      .dial(dialInput)
      .then(
        () => {
          sipStatusCode = 200;
        },
        async (err: unknown) => {
          // The confirmation was cancelled (the dial ended with it, or failed as the cancellation
          // hung up): the cancellation handler hangs up and records; no activity may be scheduled.
          // A dial cancelled for another reason (its worker shut down) is ambiguous like any loss.
          if (cancellationRequested()) return;
          const failure = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
          const known = failure?.type && failure.type in DIAL_FAILURE_OUTCOME ? (failure.type as keyof typeof DIAL_FAILURE_OUTCOME) : undefined;
          if (known !== undefined) {
            failed = DIAL_FAILURE_OUTCOME[known];
            const details = failure?.details?.[0] as DialFailureDetails | undefined;
            sipStatusCode = details?.sipStatusCode;
            sipStatus = details?.sipStatus;
            return;
          }
          // Timeout, lost worker or a response that never came: the call may be up. Look, don't redial.
          log.warn('dial activity ended ambiguously; checking the room', { attempt, error: (err as Error).message });
          // A lost worker's last heartbeat tells when the dial began and what it saw of the leg.
          const timeout = err instanceof ActivityFailure && err.cause instanceof TimeoutFailure ? err.cause : undefined;
          const check = await checks.checkCall({
            roomName,
            ringingTimeoutSeconds: policy.ringingTimeoutSeconds,
            dialedAt,
            progress: dialProgressOf(timeout?.lastHeartbeatDetails),
          });
          if (check.state === CallCheckState.ANSWERED) {
            sipStatusCode = 200;
            orphanedCall = true;
            if (patched('orphaned-call-watched')) {
              // Watched like the dial activity watches a call: ends when the line is down, hangs up
              // after the outcome's grace or at the longest call, re-dispatches a missing agent.
              try {
                await watches.watchCall(dialInput);
                watched = true;
              } catch (watchErr) {
                log.warn('watching the orphaned call failed; waiting for the verdict instead', { attempt, error: (watchErr as Error).message });
              }
            }
          } else if (verdict() === undefined) {
            // Never a trunk failure: the call was placed, or may have been; only a ring-out is known.
            failed = check.state === CallCheckState.NO_ANSWER ? CallOutcome.NO_ANSWER : CallOutcome.CALL_RESULT_UNKNOWN;
          }
        },
      )
      // A check or watch cut short by the confirmation's cancellation: nothing is left to do here
      // (and a rejection nobody awaits would fail the workflow task).
      .catch((err: unknown) => {
        if (!(cancellationRequested() && isCancellation(err))) throw err;
      })
      .finally(() => {
        settled = true;
      });

    // The first of: the call settles (failed, or answered and over), the agent's verdict, a stop.
    await condition(() => settled || call.report !== undefined || stopRequested());
    if (orphanedCall && !watched && verdict() === undefined && !stopRequested()) {
      // Rare: the call is up but nobody watches it. Wait for the verdict, bounded by the longest call.
      await condition(() => call.report !== undefined || stopRequested(), (policy.maxCallDurationSeconds + policy.outcomeMarginSeconds) * 1000);
    }
    const agentReport = verdict();
    let outcome: CallOutcome;
    if (failed !== undefined) outcome = failed;
    else if (agentReport !== undefined) outcome = agentReport.outcome;
    else if (optOutRequested) outcome = CallOutcome.OPTED_OUT;
    else if (cancelRequested) outcome = CallOutcome.APPOINTMENT_CANCELLED;
    else outcome = CallOutcome.NO_OUTCOME;
    call.attempt = 0;

    finalOutcome = finalOutcomeOf(outcome, attempt);
    if (finalOutcome !== undefined) finalDetail = agentReport?.detail;
    // Not final: the next attempt waits for its backoff. Recorded with this outcome (the appointment
    // shows the next call time) and waited out by the loop without a planning activity of its own.
    // A backoff that ends after the deadline is left to the plan, which ends the confirmation now.
    const retryAtMs = Date.now() + backoffSeconds(policy, attempt) * 1000;
    backoffUntilMs = finalOutcome === undefined && retryAtMs < deadlineMs && !stopBeforeCall() && patched(BACKOFF_WAIT_PATCH) ? retryAtMs : undefined;

    // Recorded at once, in the workflow task that answers the agent's Update: the ack reaches the
    // agent now, and the dial activity (watching the ledger) lets its goodbye finish before hanging up.
    const finished = await record({
      ...decisionSubject(),
      attempt,
      // With a verdict the call ends after the goodbye (the dial activity sees to it); otherwise now.
      roomName: agentReport === undefined ? roomName : undefined,
      outcome,
      sipStatusCode,
      sipStatus,
      finalOutcome,
      detail: agentReport?.detail,
      ...(backoffUntilMs === undefined ? {} : { retryAt: new Date(backoffUntilMs).toISOString(), deadline: new Date(deadlineMs).toISOString() }),
      now: new Date().toISOString(),
    });
    // The backoff ends outside the calling window, or on a day the caps are used up: wait straight
    // for the first time a call is allowed (the plan then checks again) instead of waking at the
    // backoff's end only to wait again. The branch follows the recorded result (absent from histories
    // recorded before it existed), so no patch is needed.
    // The backoff itself stays the plan's `notBefore`: a re-plan (an override, a move) starts from it.
    const allowedAtMs = finished?.nextCallAt === undefined ? Number.NaN : Date.parse(finished.nextCallAt);
    nextCallAtMs = backoffUntilMs !== undefined && allowedAtMs > backoffUntilMs && allowedAtMs < deadlineMs ? allowedAtMs : undefined;
    // No call allowed before the deadline: planned at once (as for a backoff past the deadline), and
    // the plan ends it now rather than after a backoff that cannot lead to a call.
    if (finished?.noCallBeforeDeadline === true) backoffUntilMs = undefined;
    // Recorded: a cancellation from here on only needs to hang up a call still in progress.
    open = undefined;
    await dialing;
    if (orphanedCall && !watched && agentReport !== undefined) {
      await sleep(HANGUP_GRACE_SECONDS * 1000);
      await db.hangUp({ roomName });
    }
    liveRoom = undefined;

    return {
      attempt,
      roomName,
      dialedAt,
      dialedAtLocal: plan.nowLocal,
      endedAt: new Date().toISOString(),
      sipStatusCode,
      sipStatus,
      outcome,
    };
  }

  function agentMetadata(attempt: number): AgentJobMetadata {
    return {
      workflowId: info.workflowId,
      attempt,
      practiceName: request.practiceName,
      practiceCallbackNumber: request.practiceCallbackNumber,
      provider: request.provider,
      appointmentStartLocal: appointmentStart,
      patientTimeZone: request.patientTimeZone,
      reason: request.reason,
      patientFirstName: request.patientName.trim().split(/\s+/)[0] ?? '',
      voicemailAllowed: !voicemailLeft,
    };
  }
}

/** Marker of a run whose start refused its request (see {@link startRequest}). */
const REFUSED_REQUEST_PATCH = 'refused-invalid-request';
/**
 * Marker of a run that waits out a retry's backoff itself: the outcome's record carries the next
 * call time, and no planning activity runs before the backoff ends (one activity fewer per retry).
 */
const BACKOFF_WAIT_PATCH = 'backoff-waited-without-plan';
/** Marker of a run that checks `appointmentMoved` signals with the client's rules. */
const CHECKED_MOVE_PATCH = 'checked-appointment-moved';

/**
 * The request, checked with the client's rules at the workflow's start time; a bad one fails the
 * workflow at once — non-retryable, of type {@link INVALID_REQUEST_FAILURE}, naming every bad field
 * (never its value), with the problems as details.
 *
 * Replay-safe in both directions, with no extra history event for a good request: a refusal
 * records a marker before it fails the run, and a replay follows the history, not today's rules —
 * a run refused at its start is refused again; any other run replays as it ran, even when a rule has
 * tightened since, or the libphonenumber-js metadata or the runtime's tz data changed (those two
 * checks are not repeated on replay), or the run started before this check existed.
 */
function startRequest(input: unknown, startTime: Date, replaying: boolean): ConfirmationRequest {
  if (!replaying) {
    try {
      return parseConfirmationRequest(input, startTime);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      patched(REFUSED_REQUEST_PATCH);
      throw refusal(err);
    }
  }
  if (patched(REFUSED_REQUEST_PATCH)) {
    try {
      parseConfirmationRequest(input, startTime);
    } catch (err) {
      if (err instanceof ValidationError) throw refusal(err);
      throw err;
    }
    throw refusal(new ValidationError([{ field: '(request)', problem: 'refused at the start of this run' }]));
  }
  try {
    return parseConfirmationRequest(input, startTime, { dataChecks: false });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    // Started before these rules applied here, and it ran: replay it as it ran.
    return input as ConfirmationRequest;
  }
}

function refusal(err: ValidationError): ApplicationFailure {
  return ApplicationFailure.create({
    type: INVALID_REQUEST_FAILURE,
    message: `invalid confirmation request: ${err.message}`,
    nonRetryable: true,
    details: [err.problems],
  });
}

/** The lost dial activity's heartbeat details, when they are a {@link DialProgress}. */
function dialProgressOf(details: unknown): DialProgress | undefined {
  const d = details as Partial<DialProgress> | null | undefined;
  return d && typeof d === 'object' && typeof d.dialStartedAt === 'string' ? (d as DialProgress) : undefined;
}

/** Calls stop this long before the appointment. */
function deadlineOf(appointmentStart: string, policy: CallPolicy): number {
  return Date.parse(appointmentStart) - policy.deadlineBeforeAppointmentSeconds * 1000;
}

/** Wait after the `attempt`-th retryable outcome: initial × multiplier^(attempt − 1). */
export function backoffSeconds(policy: CallPolicy, attempt: number): number {
  return policy.initialBackoffSeconds * Math.pow(policy.backoffMultiplier, attempt - 1);
}
