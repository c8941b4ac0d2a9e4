/**
 * Activities of the confirmation workflow, built by the worker from config: `createActivities(deps)`.
 * Each one is the boundary where the outside world's errors are normalised for the workflow.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import {
  CallCheckState,
  CallEnd,
  CallOutcome,
  ConsentState,
  DialFailureType,
  Phase,
  PlanDecision,
  attemptRoomName,
  type AcquireChannelInput,
  type CallCheckResult,
  type ChannelGrant,
  type CheckCallInput,
  type ConfirmationActivities,
  type DialFailureDetails,
  type DialInput,
  type DialProgress,
  type DecisionSubject,
  type CallResult,
  type DialResult,
  type FinishAttemptInput,
  type OutcomeDetail,
  type PlanAttemptInput,
  type PlanAttemptResult,
} from '../src/contracts';
import type { FinishAttemptResult, LateOutcomeInput, TimeZoneCheck } from '../src/contracts';
import { DialError, InvalidDataError, type AuditEntry, type CallingRules, type ConfirmationStore, type PhaseChange, type Telephony } from '../src/ports';
import { safeMessage } from '../src/errors';
import {
  commonWindowEnd,
  formatForOperators,
  isValidTimeZone,
  localDate,
  nextCommonWindowStart,
  nextWindowStart,
  toLocalIso,
} from '../src/rules/calling-window';
import { capCounts, capSlot, CAP_WEEK_MS, nextAllowedCall } from '../src/rules/caps';
import { numberTimeZones, plausibleZones } from '../src/rules/time-zones';
import { channelHolder, holderOfRoom, type ChannelGate } from '../src/pacing';
import { noopWorkerMetrics, type WorkerMetrics } from '../src/metrics';

/** What the activities need; the worker builds these from config. */
export interface ActivityDeps {
  store: ConfirmationStore;
  telephony: Telephony;
  rules: CallingRules;
  logger: Logger;
  /** Called after a number is put on the do-not-call list, to stop its other confirmations. */
  onOptOut?: (phone: string, exceptWorkflowId: string) => Promise<void>;
  /** Called after a campaign's confirmation wrote its final outcome back, to tell the campaign (best effort). */
  onCampaignConfirmationEnded?: (practiceId: string, campaignId: string) => Promise<void>;
  /** How often a waiting activity polls a room, in ms. Default 500. */
  pollIntervalMs?: number;
  /**
   * An answered call's room is first checked for its agent this long after the answer, then every
   * {@link agentCheckEveryMs} until the agent is in it; a dispatch no worker took (or whose job
   * ended without an agent) is replaced, at most {@link maxAgentRedispatches} times. In ms; default 1 500.
   */
  agentJoinGraceMs?: number;
  /** Default 1 500 ms. */
  agentCheckEveryMs?: number;
  /** Default 5: the answered calls waiting for an agent (the backlog) are bounded in number by the channels and in time by this. */
  maxAgentRedispatches?: number;
  /**
   * Waits before each new try of a dial LiveKit refused before any INVITE (`NOT_PLACED`, e.g. "cpu
   * exhausted"), in ms; one try more than entries. Default [1 000, 2 000, 4 000]: four tries within ~7 s.
   */
  notPlacedRetryDelaysMs?: number[];
  /**
   * The channel / calls-per-second gate of the worker's trunk (`ChannelBroker`). Without it channels
   * are granted at once and calls are not paced (tests of other parts); the worker always builds it.
   */
  pacing?: ChannelGate;
  /** A dial whose lease expired before it started (or a run that never asked) waits this long for a channel, in ms. Default 60 000. */
  dialChannelWaitMs?: number;
  /** Where calls placed and answered, outcomes and the agents' backlog are counted (Prometheus). Default: nowhere. */
  metrics?: WorkerMetrics;
}

/** How long planning waits for a free channel before leaving the wait to `acquireChannel`, in ms. */
const CHANNEL_TRY_MS = 500;
/** Phase of the confirmation after each planning decision (final decisions: finishAttempt writes DONE). */
const PLAN_PHASE: Partial<Record<PlanDecision, Phase>> = {
  [PlanDecision.DIAL]: Phase.CALLING,
  [PlanDecision.WAIT_WINDOW]: Phase.WAITING_FOR_WINDOW,
  [PlanDecision.WAIT_CAP]: Phase.WAITING_FOR_CAP,
};
const RINGING_STATES = new Set(['dialing', 'ringing', 'automation']);
/**
 * A lost dial's leg that was still ringing this close to its ringing timeout rang out (NO_ANSWER).
 * livekit-sip's SIP failures (busy, decline, …) end a leg within a few seconds of the dial, and the
 * leg's leave may trail the end by up to 2.5 s; a room poll may miss the last 0.5 s.
 */
const RANG_OUT_TOLERANCE_MS = 3_000;
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Builds the activity implementations registered on the worker. */
export function createActivities(deps: ActivityDeps): ConfirmationActivities {
  const { store, telephony, rules, logger, pacing } = deps;
  const metrics = deps.metrics ?? noopWorkerMetrics;
  const pollMs = deps.pollIntervalMs ?? 500;
  // The zone comes from the request; the tz database is the runtime's. Both go into every audit row.
  const zoneSource = `request.patientTimeZone; tzdata ${process.versions.tz ?? 'unknown'}`;

  type Decision = Omit<AuditEntry, keyof DecisionSubject | 'idempotencyKey' | 'timeZone' | 'timeZoneSource' | 'ruleSet' | 'ruleSetVersion' | 'decidedAtLocal'>;

  /**
   * Appends the audit row of one decision (once per workflow run and decision number). A planning
   * decision passes the zones it checked: its local time is then the primary zone's (the override's
   * zone, else the request's), and the row names the zones and which decided.
   */
  function audit(subject: DecisionSubject, decision: Decision, zones?: TimeZoneCheck, then?: PhaseChange): Promise<void> {
    const zone = zones?.primaryZone ?? subject.patientTimeZone;
    return store.appendAudit({
      idempotencyKey: `${subject.workflowId}/${subject.runId}/${subject.decisionSeq}`,
      workflowId: subject.workflowId,
      runId: subject.runId,
      appointmentId: subject.appointmentId,
      practiceId: subject.practiceId,
      phone: subject.phone,
      attempt: subject.attempt,
      decidedAtLocal: toLocalIso(decision.decidedAt, zone),
      timeZone: zone,
      timeZoneSource: zones ? zoneSourceOf(zones) : zoneSource,
      ruleSet: rules.ruleSet,
      ruleSetVersion: rules.ruleSetVersion,
      ...decision,
      ...(zones ? { timeZones: zones } : {}),
    }, then);
  }

  return nonRetryableOnBadData({
    async planAttempt(input: PlanAttemptInput): Promise<PlanAttemptResult> {
      const now = new Date(input.now);
      const deadline = new Date(input.deadline);
      if (input.appointment) await store.registerConfirmation(input.appointment);
      // The called party's local time: the window must be open in every zone they may be in (an
      // override the practice recorded replaces the number's zones). Both in one read.
      const { consent, override } = await store.callingFacts(input.practiceId, input.phone);
      if (override && !isValidTimeZone(override.zone)) {
        throw new InvalidDataError('time-zone override: its zone is not one this runtime\'s tz database knows; record the override again');
      }
      const zoneCheck = plausibleZones(input.patientTimeZone, await numberTimeZones(input.phone), override);
      /** The primary zone: the caps' local date and the recorded local times. */
      const zone = zoneCheck.primaryZone;
      const zones = zoneCheck.checked.map((c) => c.zone);
      let result: PlanAttemptResult = { decision: PlanDecision.DIAL, nowLocal: toLocalIso(now, zone), dayCount: 0, weekCount: 0 };
      // No call starts after the window closes in any zone, nor after the deadline: the channel gate gives up then.
      const dialUntil = (): string => {
        const { closes, closedBy } = commonWindowEnd(now, zones, rules);
        zoneCheck.closedBy = closedBy;
        return new Date(Math.min(closes.getTime(), deadline.getTime())).toISOString();
      };
      let counted = false;
      const wait = (decision: PlanDecision, at: Date, openedBy: string | undefined): PlanAttemptResult => {
        if (openedBy !== undefined) zoneCheck.openedBy = openedBy;
        return { ...result, decision, waitUntil: at.toISOString(), waitUntilLocal: formatWait(at, zone, openedBy) };
      };
      /** Nothing before the deadline: say so when each zone alone had a window but never all at once. */
      const expired = (from: Date): PlanDecision => {
        if (zones.length > 1 && zones.every((z) => nextWindowStart(from, z, rules).getTime() < deadline.getTime())) zoneCheck.noCommonWindow = true;
        return PlanDecision.EXPIRED;
      };

      if (consent === ConsentState.DO_NOT_CALL) result.decision = PlanDecision.DO_NOT_CALL;
      else if (consent !== ConsentState.GRANTED) result.decision = PlanDecision.NO_CONSENT;
      else {
        const earliest = input.notBefore && Date.parse(input.notBefore) > now.getTime() ? new Date(input.notBefore) : now;
        const common = nextCommonWindowStart(earliest, zones, rules, deadline);
        if (common === undefined) result.decision = expired(earliest);
        else if (common.opens.getTime() > now.getTime()) {
          // Not open yet: the wait also honours the caps as the ledger stands (a wake at the window's
          // opening only to wait again is skipped); none before the deadline ends it now, as it would
          // with the window open.
          const calls = await store.callsToNumber(input.phone, new Date(common.opens.getTime() - CAP_WEEK_MS));
          const allowed = nextAllowedCall(common.opens, zones, zone, rules, deadline, calls);
          if (allowed !== undefined && allowed.opens.getTime() === common.opens.getTime()) result = wait(PlanDecision.WAIT_WINDOW, common.opens, common.openedBy);
          else {
            const counts = capCounts(common.opens, zone, calls);
            counted = true;
            result = { ...result, dayCount: counts.dayCount, weekCount: counts.weekCount };
            result = allowed === undefined ? { ...result, decision: PlanDecision.CAP_REACHED } : wait(PlanDecision.WAIT_CAP, allowed.opens, allowed.openedBy ?? common.openedBy);
          }
        }
        else {
          const reservation = await store.reserveAttempt({
            workflowId: input.workflowId,
            attempt: input.attempt,
            appointmentId: input.appointmentId,
            phone: input.phone,
            at: now,
            localDate: localDate(now, zone),
            maxCallsPerDay: rules.maxCallsPerDay,
            maxCallsPerWeek: rules.maxCallsPerWeek,
          });
          counted = true;
          result.dayCount = reservation.dayCount;
          result.weekCount = reservation.weekCount;
          if (reservation.reserved) result.windowEndsAt = dialUntil();
          else {
            // The slot opens when both caps allow a call: the next local day and/or a week after the oldest call.
            const opensAgain = nextCommonWindowStart(capSlot(now, zone, rules, reservation), zones, rules, deadline);
            result = opensAgain === undefined ? { ...result, decision: PlanDecision.CAP_REACHED } : wait(PlanDecision.WAIT_CAP, opensAgain.opens, opensAgain.openedBy);
          }
        }
      }
      result.timeZones = zoneCheck;

      // The phase goes with the audit row (one statement). A DIAL is CALLING: should the channel be
      // refused below, the workflow's acquireChannel records the wait for one.
      const phase = PLAN_PHASE[result.decision];
      await audit(
        input,
        {
          decidedAt: now,
          consentState: consent,
          dayCount: counted ? result.dayCount : null,
          weekCount: counted ? result.weekCount : null,
          decision: result.decision,
          outcome: null,
          sipStatusCode: null,
          sipStatus: null,
          detail: result.waitUntil ? { waitUntil: result.waitUntil, deadline: input.deadline } : { deadline: input.deadline },
        },
        zoneCheck,
        phase === undefined ? undefined : { phase, ...(result.waitUntil === undefined ? {} : { nextCallAt: new Date(result.waitUntil) }) },
      );
      if (result.decision === PlanDecision.DIAL && input.tryChannel) {
        // A free channel is taken at once (one grant tick, fairly among the waiters): the common case
        // needs no separate wait in the workflow. Otherwise the workflow waits in acquireChannel.
        result.channelGranted = pacing
          ? (
              await pacing.acquire({
                workflowId: input.workflowId,
                attempt: input.attempt,
                practiceId: input.practiceId,
                ...(input.campaignId ? { campaignId: input.campaignId } : {}),
                deadline: input.deadline,
                giveUpAt: new Date(Date.now() + CHANNEL_TRY_MS).toISOString(),
                // Not granted yet: the workflow's acquireChannel waits next, in the same place in the queue.
                staysQueued: true,
              })
            ).granted
          : true;
      }
      logger.info(
        // Epoch ms, not ISO: log strings shaped like a date or time are redacted (appointment times are health data).
        { workflowId: input.workflowId, attempt: input.attempt, decision: result.decision, waitUntilMs: result.waitUntil === undefined ? undefined : Date.parse(result.waitUntil) },
        'attempt planned',
      );
      return result;
    },

    async dial(input: DialInput): Promise<CallResult> {
      const ctx = Context.current();
      // What this activity sees of its call goes out as heartbeat details: should its worker die, the
      // workflow's checkCall learns when the dial began and how far the call got. The first heartbeat
      // is sent at once (later ones are throttled by the SDK).
      const progress: DialProgress = { dialStartedAt: new Date().toISOString() };
      ctx.heartbeat(progress);
      // Heartbeats let the workflow notice a lost worker within the heartbeat timeout, not the call's length.
      const beat = setInterval(() => ctx.heartbeat(progress), 2_000);
      // Cancelled (the confirmation was cancelled): the patient must not stay on the line. The
      // workflow deletes the room too; this covers a call that was placed as the cancellation came.
      const hangUpOnCancel = (): void => {
        // Only a cancellation the workflow asked for ends the call. A worker shutting down (a deploy)
        // or a timeout leaves it up: the workflow resolves it from the room on another worker.
        if (ctx.cancellationDetails?.cancelRequested !== true) return;
        void telephony.hangUp(input.roomName).catch((err: unknown) =>
          logger.warn({ workflowId: input.workflowId, attempt: input.attempt, error: safeMessage(err) }, 'hang-up after cancellation failed'),
        );
      };
      ctx.cancellationSignal.addEventListener('abort', hangUpOnCancel, { once: true });
      let answered: DialResult;
      let inFlight = false;
      let watching = true;
      let stopWatching = () => {};
      const watchStopped = new Promise<void>((resolve) => (stopWatching = resolve));
      // Watches the room while CreateSIPParticipant is in flight (the leg joins it before the INVITE).
      void (async () => {
        while (watching) {
          const found = await telephony.checkCall(input.roomName).catch(() => undefined);
          if (inFlight && watching && found?.callStatus !== undefined) {
            progress.lastStatus = found.callStatus;
            progress.lastSeenAt = new Date().toISOString();
            if (found.callStatus === 'active') progress.answeredAt ??= progress.lastSeenAt;
          }
          await Promise.race([sleepMs(Math.max(pollMs, 250)), watchStopped]);
        }
      })();
      const delays = deps.notPlacedRetryDelaysMs ?? [1_000, 2_000, 4_000];
      const holder = channelHolder(input.workflowId, input.attempt);
      let unhold = (): void => {};
      /** Whether the call may still be up (then the lease stays for checkCall / the workflow to end). */
      let mayBeUp = false;
      try {
        if (pacing) {
          // The attempt's channel: renewed while this activity is with the call.
          if (!(await pacing.ensureLease(input.workflowId, input.attempt, deps.dialChannelWaitMs ?? 60_000, ctx.cancellationSignal))) {
            throw new DialError(DialFailureType.NOT_PLACED, 'no channel of the trunk became free for the call');
          }
          unhold = pacing.hold(holder);
        }
        // Before the call slot: nothing of variable latency between the slot and the INVITE.
        await telephony.prepareCall?.(input);
        for (let tryNo = 0; ; tryNo += 1) {
          // Belt and braces for "one call per attempt": never dial into a room that already has a call.
          const existing = await telephony.checkCall(input.roomName);
          if (existing.callStatus !== undefined) {
            throw new DialError(DialFailureType.UNKNOWN, `room ${input.roomName} already has a call (${existing.callStatus})`);
          }
          // Never place a call for a confirmation that is already cancelled.
          if (ctx.cancellationDetails?.cancelRequested === true) throw new DialError(DialFailureType.TRUNK_ERROR, 'cancelled before the call was placed');
          try {
            // Calls per second, held across processes: the INVITE waits for its slot.
            if (pacing) await pacing.waitForCallSlot(holder, ctx.cancellationSignal);
            progress.dialStartedAt = new Date().toISOString();
            inFlight = true;
            mayBeUp = true;
            answered = await telephony.dial(input, ctx.cancellationSignal);
            metrics.callPlaced();
            metrics.callAnswered((Date.parse(answered.answeredAt) - Date.parse(progress.dialStartedAt)) / 1000);
            if (ctx.cancellationSignal.aborted) hangUpOnCancel();
            break;
          } catch (err) {
            const notPlaced = err instanceof DialError && err.type === DialFailureType.NOT_PLACED;
            if (inFlight && !notPlaced) metrics.callPlaced(); // the INVITE went out (busy, no answer, …)
            // Refused before any INVITE: certainly no call, so trying again cannot make a second one.
            if (!notPlaced || tryNo >= delays.length) throw err;
            mayBeUp = false;
            logger.warn({ workflowId: input.workflowId, attempt: input.attempt, try: tryNo + 1 }, 'dial refused before any INVITE; trying again');
            await ctx.sleep(delays[tryNo]!);
          } finally {
            inFlight = false;
          }
        }
        progress.answeredAt = answered.answeredAt;
        logger.info({ workflowId: input.workflowId, attempt: input.attempt, room: input.roomName }, 'call answered');
      } catch (err) {
        clearInterval(beat);
        ctx.cancellationSignal.removeEventListener('abort', hangUpOnCancel);
        const e = err instanceof DialError ? err : new DialError(DialFailureType.UNKNOWN, safeMessage(err));
        unhold();
        // A known failure means no call is up: the channel is free. An unknown one may have a call
        // up: the workflow's checkCall renews or releases the lease (else it expires).
        if (pacing && !(mayBeUp && e.type === DialFailureType.UNKNOWN)) await releaseQuietly(holder);
        logger.info(
          { workflowId: input.workflowId, attempt: input.attempt, failure: e.type, sipStatusCode: e.sipStatusCode },
          'call not answered',
        );
        const details: DialFailureDetails = { sipStatusCode: e.sipStatusCode, sipStatus: e.sipStatus };
        // Never retried by Temporal: a second try would be a second call.
        throw ApplicationFailure.create({ type: e.type, message: e.message, nonRetryable: true, details: [details] });
      } finally {
        // Not awaited: the answered call is watched by stayWithCall from now on, without delay.
        inFlight = false;
        watching = false;
        stopWatching();
      }
      try {
        const end = await stayWithCall(input);
        logger.info({ workflowId: input.workflowId, attempt: input.attempt, end }, 'call ended');
        // The line is down (stayWithCall deleted the room): the channel is free.
        if (pacing) await releaseQuietly(holder);
        return { ...answered, endedAt: new Date().toISOString(), end };
      } finally {
        unhold();
        clearInterval(beat);
        ctx.cancellationSignal.removeEventListener('abort', hangUpOnCancel);
      }
    },

    async watchCall(input: DialInput): Promise<CallEnd> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 2_000);
      // As in dial: a cancellation the workflow asked for ends the call; a worker shutdown does not.
      ctx.cancellationSignal.addEventListener(
        'abort',
        () => {
          if (ctx.cancellationDetails?.cancelRequested === true) void telephony.hangUp(input.roomName).catch(() => undefined);
        },
        { once: true },
      );
      // The orphaned call holds its attempt's channel until it ends.
      const holder = channelHolder(input.workflowId, input.attempt);
      const unhold = pacing?.hold(holder) ?? (() => {});
      try {
        if (pacing) await pacing.renew(holder);
        const end = await stayWithCall(input);
        logger.info({ workflowId: input.workflowId, attempt: input.attempt, end }, 'orphaned call ended');
        if (pacing) await releaseQuietly(holder);
        return end;
      } finally {
        unhold();
        clearInterval(beat);
      }
    },

    async hangUp(input: { roomName: string }): Promise<void> {
      await telephony.hangUp(input.roomName);
      const holder = holderOfRoom(input.roomName);
      if (pacing && holder) await releaseQuietly(holder);
    },

    async checkCall(input: CheckCallInput): Promise<CallCheckResult> {
      // A lost dial's call may still be up (its worker died): the lease is renewed while the room is
      // looked at, kept when the call is up (watchCall takes over) and released when it is not.
      const holder = pacing ? holderOfRoom(input.roomName) : undefined;
      if (!holder) return checkCallOnce(input);
      const unhold = pacing!.hold(holder);
      try {
        await pacing!.renew(holder);
        const result = await checkCallOnce(input);
        if (!(result.state === CallCheckState.ANSWERED && result.callStatus === 'active')) await releaseQuietly(holder);
        return result;
      } finally {
        unhold();
      }
    },

    async acquireChannel(input: AcquireChannelInput): Promise<ChannelGrant> {
      if (!pacing) return { granted: true, waitedMs: 0 };
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 2_000);
      ctx.heartbeat();
      // Progress counts calls waiting for a channel apart from calls up (older workflows send no appointment id).
      const phase = (p: Phase) => (input.appointmentId ? store.recordPhase(input.practiceId, input.appointmentId, p) : Promise.resolve());
      try {
        await phase(Phase.WAITING_FOR_CHANNEL);
        const grant = await pacing.acquire(input, ctx.cancellationSignal);
        if (grant.granted) await phase(Phase.CALLING);
        if (!grant.granted) {
          // No call was placed: the attempt's cap reservation goes (the attempt is planned again).
          await store.releaseReservation(input.workflowId, input.attempt);
          logger.info({ workflowId: input.workflowId, attempt: input.attempt, refusal: grant.refusal, waitedMs: grant.waitedMs }, 'no channel for the attempt');
        } else if (grant.waitedMs > 1_000) {
          logger.info({ workflowId: input.workflowId, attempt: input.attempt, waitedMs: grant.waitedMs }, 'channel granted after waiting');
        }
        return grant;
      } finally {
        clearInterval(beat);
      }
    },

    async recordLateOutcome(input: LateOutcomeInput): Promise<void> {
      const appointment = await store.appointmentOfWorkflow(input.workflowId);
      if (!appointment) {
        // Nothing to attach it to: keep retrying (an operator sees it pending in the Web UI), never drop it.
        throw ApplicationFailure.create({ type: 'UNKNOWN_CONFIRMATION', message: `no appointment is registered for ${input.workflowId}` });
      }
      const reportedAt = new Date(input.reportedAt);
      await store.appendAudit({
        idempotencyKey: `late/${input.workflowId}/${input.attempt}/${input.outcome}`,
        workflowId: input.workflowId,
        runId: Context.current().info.workflowExecution?.runId ?? '',
        appointmentId: appointment.appointmentId,
        practiceId: appointment.practiceId,
        phone: appointment.phone,
        attempt: input.attempt,
        decidedAt: reportedAt,
        decidedAtLocal: toLocalIso(reportedAt, appointment.timeZone),
        timeZone: appointment.timeZone,
        timeZoneSource: zoneSource,
        ruleSet: rules.ruleSet,
        ruleSetVersion: rules.ruleSetVersion,
        consentState: null,
        dayCount: null,
        weekCount: null,
        decision: 'LATE_OUTCOME',
        outcome: input.outcome,
        sipStatusCode: null,
        sipStatus: null,
        // The agent's fields first: the workflow-owned `reason` always wins.
        detail: { ...agentDetail(input.detail), reason: input.reason },
      });
      // An opt-out is honoured even when the confirmation had already decided.
      if (input.outcome === CallOutcome.OPTED_OUT) {
        await store.addDoNotCall(appointment.phone, `agent:${input.workflowId}`, 'patient asked to stop calls');
        await deps.onOptOut?.(appointment.phone, input.workflowId);
      }
      logger.warn({ workflowId: input.workflowId, attempt: input.attempt, outcome: input.outcome }, 'late agent outcome audited');
    },

    async finishAttempt(input: FinishAttemptInput): Promise<FinishAttemptResult> {
      const result = await finish(input);
      if (pacing && input.attempt > 0) {
        // Idempotent. A call still up (the goodbye after the verdict) keeps its channel: the dial
        // activity releases it when the line is down.
        const roomName = input.roomName ?? attemptRoomName(input.workflowId, input.attempt);
        const down = input.roomName !== undefined || (await telephony.checkCall(roomName).then((c) => c.callStatus === undefined || c.callStatus === 'hangup'));
        if (down) await releaseQuietly(channelHolder(input.workflowId, input.attempt));
      }
      return result;
    },
  });

  async function releaseQuietly(holder: string): Promise<void> {
    // A failed release is not the call's failure: an unrenewed lease expires on its own.
    await pacing!.release(holder).catch((err: unknown) => logger.warn({ holder, error: safeMessage(err) }, 'releasing a channel failed'));
  }

  async function checkCallOnce(input: CheckCallInput): Promise<CallCheckResult> {
    const ctx = Context.current();
    const until = Date.now() + (input.ringingTimeoutSeconds + 10) * 1000;
    const ringingMs = input.ringingTimeoutSeconds * 1000;
    const progress = input.progress;
    // When the dial began: the lost activity's own record, else when the leg joined the room
    // (livekit-sip adds it just before the INVITE), else when the workflow scheduled the dial.
    let dialStart = progress?.dialStartedAt ? Date.parse(progress.dialStartedAt) : undefined;
    let lastSeen = progress?.lastSeenAt && RINGING_STATES.has(progress.lastStatus ?? '') ? Date.parse(progress.lastSeenAt) : undefined;
    let seenStatus = progress?.lastStatus;
    for (;;) {
      const found = await telephony.checkCall(input.roomName);
      // "hangup" is only ever set on an answered leg; a leg that failed or rang out leaves still "ringing".
      if (found.state === CallCheckState.ANSWERED || found.callStatus === 'hangup' || progress?.answeredAt !== undefined) {
        return { ...found, state: CallCheckState.ANSWERED };
      }
      if (RINGING_STATES.has(found.callStatus ?? '')) {
        // A phone still ringing may yet be answered: watch it, don't guess.
        seenStatus = found.callStatus;
        lastSeen = Date.now();
        if (dialStart === undefined && found.joinedAt) dialStart = Date.parse(found.joinedAt);
        if (Date.now() > until) return { state: CallCheckState.UNKNOWN, callStatus: found.callStatus };
        ctx.heartbeat();
        await ctx.sleep(pollMs);
        continue;
      }
      // The leg is gone without an answer. Still there at its ringing timeout: it rang out. Gone
      // earlier: busy, declined, unavailable and a failed trunk all look the same in the room.
      const start = dialStart ?? (input.dialedAt ? Date.parse(input.dialedAt) : undefined);
      const tolerance = Math.min(RANG_OUT_TOLERANCE_MS, ringingMs / 3);
      if (lastSeen !== undefined && start !== undefined && lastSeen >= start + ringingMs - tolerance) {
        return { state: CallCheckState.NO_ANSWER, callStatus: seenStatus };
      }
      return { state: CallCheckState.UNKNOWN, callStatus: seenStatus };
    }
  }

  /**
   * The first instant at or after `retryAt` at which the calling window and the caps allow the next
   * call, as the ledger stands (see `FinishAttemptResult.nextCallAt`). Best effort: on any failure
   * the workflow waits for `retryAt` and the plan then finds the time itself.
   */
  async function nextCallOf(input: FinishAttemptInput & { retryAt: string; deadline: string }): Promise<Date | 'none' | undefined> {
    try {
      const from = new Date(input.retryAt);
      // Calls counted by the caps at any instant from `from` on were placed in the week before it.
      const [{ override }, calls, numberZones] = await Promise.all([
        store.callingFacts(input.practiceId, input.phone),
        store.callsToNumber(input.phone, new Date(from.getTime() - CAP_WEEK_MS)),
        numberTimeZones(input.phone),
      ]);
      // A bad override is the plan's to report.
      if (override && !isValidTimeZone(override.zone)) return undefined;
      const zones = plausibleZones(input.patientTimeZone, numberZones, override);
      return nextAllowedCall(from, zones.checked.map((c) => c.zone), zones.primaryZone, rules, new Date(input.deadline), calls)?.opens ?? 'none';
    } catch (err) {
      logger.warn({ workflowId: input.workflowId, attempt: input.attempt, error: safeMessage(err) }, 'next call time not computed; waiting for the backoff');
      return undefined;
    }
  }

  async function finish(input: FinishAttemptInput): Promise<FinishAttemptResult> {
    const now = new Date(input.now);
    // Not final and backing off: when the next call may be placed (the appointment shows it).
    const next = input.retryAt && input.deadline && !input.finalOutcome ? await nextCallOf({ ...input, retryAt: input.retryAt, deadline: input.deadline }) : undefined;
    const nextCallAt = next instanceof Date ? next : undefined;
    if (input.attempt > 0 && input.notPlaced) {
      // Reserved, never placed (stopped while waiting for a channel): no call to count against the caps.
      await store.releaseReservation(input.workflowId, input.attempt);
      // It may still be queued (planning's try leaves it there for acquireChannel), or hold a lease granted meanwhile.
      if (pacing) {
        const holder = channelHolder(input.workflowId, input.attempt);
        await pacing.abandon(holder).catch((err: unknown) => logger.warn({ holder, error: safeMessage(err) }, 'leaving the channel queue failed'));
      }
    }
    // The ledger, the audit row and the write-back are separate rows, each written idempotently (a
    // retry rewrites the same values): they are sent together, not one after another — this
    // activity answers the agent's Update, and each round trip to the database delays the answer.
    const writes: Promise<unknown>[] = [];
    if (input.attempt > 0 && !input.notPlaced) writes.push(store.recordAttemptOutcome(input.workflowId, input.attempt, input.outcome, input.sipStatusCode));
    // Not final: waiting or planning, with the audit row (a final outcome's write-back marks it done).
    writes.push(audit(
      input,
      {
        decidedAt: now,
        consentState: null,
        dayCount: null,
        weekCount: null,
        decision: 'OUTCOME',
        outcome: input.outcome,
        sipStatusCode: input.sipStatusCode ?? null,
        sipStatus: input.sipStatus ?? null,
        // The agent's fields first: the workflow-owned `finalOutcome` always wins.
        detail: {
          ...agentDetail(input.detail),
          finalOutcome: input.finalOutcome ?? null,
          ...(input.notPlaced ? { notPlaced: true } : {}),
          ...(input.retryAt ? { retryAt: input.retryAt } : {}),
          ...(nextCallAt ? { nextCallAt: nextCallAt.toISOString() } : next === 'none' ? { noCallBeforeDeadline: true } : {}),
        },
      },
      undefined,
      // Not final: waiting for the next call (its time for progress), else planning again.
      input.finalOutcome ? undefined : input.retryAt && next !== 'none' ? { phase: Phase.WAITING_FOR_WINDOW, nextCallAt: nextCallAt ?? new Date(input.retryAt) } : { phase: Phase.PLANNING },
    ));
    const optedOut = input.outcome === CallOutcome.OPTED_OUT || input.finalOutcome === CallOutcome.OPTED_OUT;
    if (optedOut) writes.push(store.addDoNotCall(input.phone, `workflow ${input.workflowId}`, 'patient opted out'));
    if (input.finalOutcome) {
      writes.push(store.writeBack(input.practiceId, input.appointmentId, input.finalOutcome, input.detail === undefined ? undefined : agentDetail(input.detail)));
    }
    await Promise.all(writes);
    // Idempotent: the dial activity has usually deleted the room already.
    if (input.roomName) await telephony.hangUp(input.roomName);
    if (optedOut && deps.onOptOut) await deps.onOptOut(input.phone, input.workflowId);
    metrics.attemptFinished(input.practiceId, input.attempt > 0 && !input.notPlaced ? input.outcome : undefined, input.finalOutcome);
    if (input.finalOutcome && input.campaignId && deps.onCampaignConfirmationEnded) {
      // Best effort, not awaited: the campaign also counts on its own timer. This activity answers the
      // agent's Update (its workflow task waits for it), and a retry must not hang on the signal.
      void deps.onCampaignConfirmationEnded(input.practiceId, input.campaignId).catch((err: unknown) =>
        logger.warn({ workflowId: input.workflowId, error: safeMessage(err) }, 'could not tell the campaign'),
      );
    }
    logger.info(
      // Epoch ms, not ISO: log strings shaped like a date or time are redacted.
      { workflowId: input.workflowId, attempt: input.attempt, outcome: input.outcome, finalOutcome: input.finalOutcome, nextCallAtMs: nextCallAt?.getTime() },
      'attempt finished',
    );
    return nextCallAt ? { nextCallAt: nextCallAt.toISOString() } : next === 'none' ? { noCallBeforeDeadline: true } : {};
  }

  /**
   * Watches an answered call until it ends: hung up (agent after its goodbye, or patient); deleted
   * `hangupGraceSeconds` after the workflow recorded the outcome; or deleted at the longest call.
   * The outcome is read from the attempt ledger, which the workflow's `finishAttempt` writes.
   */
  async function stayWithCall(input: DialInput): Promise<CallEnd> {
    // Counted as the agents' backlog from the answer until the agent is in the room (or given up on).
    let waiting = telephony.ensureAgent !== undefined;
    const agentWaitOver = (): void => {
      if (waiting) metrics.waitingForAgent(-1);
      waiting = false;
    };
    if (waiting) metrics.waitingForAgent(1);
    try {
      return await watchAnsweredCall(input, agentWaitOver);
    } finally {
      agentWaitOver();
    }
  }

  async function watchAnsweredCall(input: DialInput, agentWaitOver: () => void): Promise<CallEnd> {
    const ctx = Context.current();
    const limit = Date.now() + (input.maxCallDurationSeconds + input.outcomeMarginSeconds) * 1000;
    let hangUpAt: number | undefined;
    const startedAt = Date.now();
    let agentCheckAt: number | undefined = telephony.ensureAgent ? startedAt + (deps.agentJoinGraceMs ?? 1_500) : undefined;
    let redispatches = 0;
    let waitLoggedAt = 0;
    for (;;) {
      const found = await telephony.checkCall(input.roomName);
      if (found.callStatus === undefined || found.callStatus === 'hangup') {
        // The line is down; delete the room too, so the agent and any leftovers leave now.
        await telephony.hangUp(input.roomName);
        return CallEnd.HUNG_UP;
      }
      if (hangUpAt === undefined && (await store.attemptOutcome(input.workflowId, input.attempt)) !== null) {
        hangUpAt = Date.now() + input.hangupGraceSeconds * 1000;
        agentCheckAt = undefined;
        agentWaitOver();
      }
      if (agentCheckAt !== undefined && Date.now() >= agentCheckAt) {
        // livekit-server drops a dispatch when no agent worker takes it then (all full); the patient
        // would hear nothing until the longest call. Answered calls still without an agent are the
        // agents' backlog: logged while they wait, bounded in time by the re-dispatches allowed.
        const presence = await telephony.ensureAgent!(input).catch(() => 'on-its-way' as const);
        const ids = { workflowId: input.workflowId, attempt: input.attempt, room: input.roomName, waitedMs: Date.now() - startedAt };
        if (presence === 'present') {
          if (redispatches > 0 || waitLoggedAt > 0) logger.info(ids, 'the agent joined the call after a wait');
          agentCheckAt = undefined;
          agentWaitOver();
        } else {
          if (presence === 'dispatched') {
            redispatches += 1;
            metrics.agentRedispatched();
            logger.warn({ ...ids, redispatches }, 'answered call without an agent: dispatched again');
          } else if (Date.now() - startedAt >= 3_000 && Date.now() - waitLoggedAt >= 5_000) {
            waitLoggedAt = Date.now();
            logger.info(ids, 'answered call waiting for its agent');
          }
          agentCheckAt = redispatches >= (deps.maxAgentRedispatches ?? 5) ? undefined : Date.now() + (deps.agentCheckEveryMs ?? 1_500);
          if (agentCheckAt === undefined) {
            agentWaitOver();
            logger.warn(ids, 'no agent came to the answered call; giving up on it (the call ends without an outcome and is retried)');
          }
        }
      }
      if (hangUpAt !== undefined && Date.now() >= hangUpAt) {
        await telephony.hangUp(input.roomName);
        return CallEnd.AFTER_OUTCOME;
      }
      if (Date.now() >= limit) {
        await telephony.hangUp(input.roomName);
        return CallEnd.MAX_DURATION;
      }
      await ctx.sleep(pollMs);
    }
  }
}

/** `Tue 2026-12-01 14:00 America/New_York`, and the same instant in the zone waited for when that is another one. */
function formatWait(at: Date, zone: string, openedBy: string | undefined): string {
  const primary = formatForOperators(at, zone);
  return openedBy === undefined || openedBy === zone ? primary : `${primary} (${formatForOperators(at, openedBy)})`;
}

/** The audit row's `time_zone_source`: where the zones came from, and the data used. */
function zoneSourceOf(zones: TimeZoneCheck): string {
  const from = zones.overrideId !== undefined ? `override #${zones.overrideId}` : zones.numberZones === 'mapped' ? 'request.patientTimeZone + number' : 'request.patientTimeZone';
  return `${from}; ${zones.data}`;
}

/**
 * The agent's outcome detail, its known fields only (the workflow's schema admits no others; this
 * keeps a caller that bypasses it from writing arbitrary keys — or a string spread into one key per
 * character — into the audit table and the write-back).
 */
function agentDetail(detail: OutcomeDetail | undefined): OutcomeDetail {
  const out: OutcomeDetail = {};
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return out;
  if (typeof detail.reschedulePreference === 'string') out.reschedulePreference = detail.reschedulePreference;
  if (typeof detail.note === 'string') out.note = detail.note;
  return out;
}

/** Failure type of an activity error that retrying can never fix (bad data, a constraint violation). */
export const BAD_DATA_FAILURE = 'BAD_DATA';

/**
 * Wraps every activity so that errors no retry can fix fail at once, non-retryably, instead of being
 * retried for ever: PostgreSQL data exceptions and integrity-constraint violations (SQLSTATE classes
 * 22 and 23) and {@link InvalidDataError}s. The database's own message is not passed on (it can quote
 * the value); the SQLSTATE, constraint and column say what is wrong.
 */
function nonRetryableOnBadData<T extends object>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw badDataFailure(name, err) ?? err;
      }
    };
  }
  return wrapped as T;
}

function badDataFailure(activity: string, err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure) return undefined;
  if (err instanceof InvalidDataError) {
    return ApplicationFailure.create({ type: BAD_DATA_FAILURE, message: `${activity}: ${safeMessage(err)}`, nonRetryable: true });
  }
  const e = err as { code?: unknown; constraint?: unknown; column?: unknown } | null;
  if (typeof e?.code === 'string' && /^2[23][0-9A-Z]{3}$/.test(e.code)) {
    const where = [typeof e.constraint === 'string' ? `constraint ${e.constraint}` : '', typeof e.column === 'string' ? `column ${e.column}` : '']
      .filter(Boolean)
      .join(', ');
    return ApplicationFailure.create({
      type: BAD_DATA_FAILURE,
      message: `${activity}: the database refused the data (SQLSTATE ${e.code}${where ? `, ${where}` : ''})`,
      nonRetryable: true,
    });
  }
  return undefined;
}
