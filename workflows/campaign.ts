/**
 * One campaign: keeps the practice's confirmations going — soonest appointment first, at most
 * `maxOutstanding` at once — and answers controls (pause, resume, cancel, limits, rows added) within
 * seconds. Contacts are read and confirmations started by an activity, so this history holds ids
 * and counts only; it continues as new long before Temporal's history limits.
 *
 * Deterministic code only (no Node built-ins, no I/O).
 */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import {
  campaignLimitsUpdate,
  campaignRowsAddedUpdate,
  CampaignState,
  campaignStatusQuery,
  campaignWorkflowId,
  cancelCampaignUpdate,
  confirmationEndedSignal,
  DEFAULT_MAX_OUTSTANDING,
  pauseCampaignUpdate,
  publicText,
  resumeCampaignUpdate,
  SearchAttr,
  type CallLimits,
  type CampaignActivities,
  type CampaignCarry,
  type CampaignProgress,
  type CampaignSummary,
  type CampaignWorkflowInput,
  type ControlAck,
  type ControlRequest,
} from '../src/contracts';
import { progressLine } from '../src/campaigns/progress-line';
import {
  validateCampaignInput,
  validateControlRequest,
  validateLimitsChange,
  validateRowsAdded,
  ValidationError,
} from '../src/validation';

/** Failure type of a campaign started with a bad input or under another id (non-retryable). */
export const INVALID_CAMPAIGN_FAILURE = 'INVALID_CAMPAIGN';
/** Failure type of a control the campaign's state does not allow (pause a paused campaign, …). */
export const CONTROL_REFUSED_FAILURE = 'CONTROL_REFUSED';

/** Database work that is short: local activities (one marker event each). */
const db = proxyLocalActivities<CampaignActivities>({
  startToCloseTimeout: '60s',
  // A database or Temporal outage is waited out; the campaign keeps its place.
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2 },
});
/** Signalling every running confirmation can take a while: a regular activity, heartbeating. */
const fanOut = proxyActivities<CampaignActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2 },
});

/** Confirmations started by one tick at most (the activity is a local one: it must stay short). */
const STARTS_PER_TICK = 100;
/** Tick while calls go on or confirmations wait to start: progress and top-ups within seconds. */
const ACTIVE_TICK_MS = 5_000;
/** Ticks woken by ended confirmations are at least this far apart. */
const MIN_TICK_GAP_MS = 2_000;
/**
 * Longest sleep while every confirmation waits (for a window, a backoff). The campaign wakes anyway
 * at the soonest waiting call, when a confirmation ends (signal) and for every control, so this is a
 * safety net only (a lost signal, the Web UI's progress line): 6 h, not hourly — overnight an hourly
 * tick was ~14 wake-ups that changed nothing (in a 3-day forecast, 100 of its workflow tasks).
 */
const IDLE_TICK_MS = 6 * 60 * 60_000;
/**
 * Continue as new past this many events: far below Temporal's 10,240-event warning (a tick is about
 * 6 events; the controls of one run, and their activities, fit many times over).
 */
const HISTORY_EVENTS_LIMIT = 2_000;
/** Patch: continue as new before a tick's local activity rather than after it. */
const CONTINUE_BEFORE_TICK_PATCH = 'campaign-continue-before-tick';

/** Runs one campaign to its end; returns counts only. */
export async function campaignWorkflow(rawInput: CampaignWorkflowInput): Promise<CampaignSummary> {
  const info = workflowInfo();
  let input: CampaignWorkflowInput;
  try {
    input = validateCampaignInput(rawInput);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw ApplicationFailure.create({ type: INVALID_CAMPAIGN_FAILURE, nonRetryable: true, message: `invalid campaign input: ${err.message}`, details: [err.problems] });
  }
  const { practiceId, campaignId } = input;
  const expectedId = campaignWorkflowId(practiceId, campaignId);
  if (info.workflowId !== expectedId) {
    throw ApplicationFailure.create({
      type: INVALID_CAMPAIGN_FAILURE,
      nonRetryable: true,
      message: `workflowId: a campaign must be started with the id campaign:<practiceId>:<campaignId> (here "${expectedId}"), so that each campaign runs once`,
    });
  }
  const maxOutstanding = input.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING;

  let carry: CampaignCarry;
  if (input.carried) {
    carry = input.carried as CampaignCarry;
  } else {
    const loaded = await db.loadCampaign({ practiceId, campaignId });
    carry = { state: loaded.state, limits: loaded.limits, run: 1, startedAt: new Date().toISOString() };
  }
  let state = carry.state;
  let limits: CallLimits = carry.limits;
  let progress: CampaignProgress | undefined;
  /** A control, new rows or an ended confirmation: tick now. */
  let wake = false;
  /** A control arrived: tick without gathering. */
  let controlPending = false;
  /** Cancelled, and the running confirmations have been told. */
  let cancelSent = false;
  let eventSeq = 0;

  if (info.typedSearchAttributes.get(SearchAttr.CampaignId) === undefined) {
    // Started without them (another SDK, the temporal CLI): the Web UI can still filter by campaign.
    upsertSearchAttributes([
      { key: SearchAttr.PracticeId, value: practiceId },
      { key: SearchAttr.CampaignId, value: campaignId },
    ]);
  }

  /** Mirrors state and limits into the database (the channel gate reads them) and audits the control. */
  async function recordControl(action: string, control: ControlRequest, detail?: Record<string, unknown>): Promise<ControlAck> {
    const at = new Date().toISOString();
    await db.recordCampaignControl({
      practiceId,
      campaignId,
      action,
      actor: control.actor,
      ...(control.reason === undefined ? {} : { reason: control.reason }),
      state,
      limits,
      at,
      idempotencyKey: `${info.workflowId}/${info.runId}/${(eventSeq += 1)}`,
      ...(detail ? { detail } : {}),
    });
    wake = true;
    controlPending = true;
    return { state, limits, at };
  }

  const refuse = (message: string) => ApplicationFailure.create({ type: CONTROL_REFUSED_FAILURE, nonRetryable: true, message });
  /** Validates a control's argument; a bad one is refused before it reaches history. */
  const checked = <T>(validate: (v: unknown) => T, value: unknown): T => {
    try {
      return validate(value);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      throw ApplicationFailure.create({ type: INVALID_CAMPAIGN_FAILURE, nonRetryable: true, message: err.message, details: [err.problems] });
    }
  };
  const ended = () => state === CampaignState.CANCELLED || state === CampaignState.COMPLETED;

  // A confirmation ended: count again (and start the next) now rather than at the next timer.
  setHandler(confirmationEndedSignal, () => {
    wake = true;
  });
  setHandler(campaignStatusQuery, () => ({ state, limits, run: carry.run, ...(progress ? { progress } : {}) }));

  /**
   * A control that moves the campaign to `to`: validated (who asks; the state it may come from),
   * then mirrored and audited. Refused controls never reach history.
   */
  function stateControl(update: typeof pauseCampaignUpdate, action: string, to: CampaignState, allowed: () => boolean, refusal: () => string): void {
    setHandler(
      update,
      async (control) => {
        state = to;
        return recordControl(action, control);
      },
      {
        validator: (control) => {
          checked(validateControlRequest, control);
          if (!allowed()) throw refuse(refusal());
        },
      },
    );
  }
  stateControl(pauseCampaignUpdate, 'pause', CampaignState.PAUSED, () => state === CampaignState.RUNNING, () => `state: the campaign is ${state}; only a RUNNING campaign can be paused`);
  stateControl(resumeCampaignUpdate, 'resume', CampaignState.RUNNING, () => state === CampaignState.PAUSED, () => `state: the campaign is ${state}; only a PAUSED campaign can be resumed`);
  stateControl(cancelCampaignUpdate, 'cancel', CampaignState.CANCELLED, () => !ended(), () => `state: the campaign is already ${state}`);
  setHandler(
    campaignLimitsUpdate,
    async (change) => {
      const before = limits;
      limits = { channels: change.channels ?? limits.channels, callsPerSecond: change.callsPerSecond ?? limits.callsPerSecond };
      return recordControl('limits', change, { before });
    },
    {
      validator: (change) => {
        checked(validateLimitsChange, change);
        if (ended()) throw refuse(`state: the campaign is ${state}; its limits can no longer change`);
      },
    },
  );
  setHandler(
    campaignRowsAddedUpdate,
    async (added) => recordControl('rowsAdded', added, { added: added.added }),
    {
      validator: (added) => {
        checked(validateRowsAdded, added);
        if (ended()) throw refuse(`state: the campaign is ${state}; rows can no longer be added`);
      },
    },
  );

  if (!input.carried) await recordControl('start', { actor: 'campaign workflow' }, { maxOutstanding });
  // Continue as new at the top of a tick, in the workflow task that woke the campaign, not after
  // the tick's local activity: that task lasts as long as the tick, and a confirmation's "ended"
  // signal arriving meanwhile made the server refuse the continue-as-new (UnhandledCommand) — each
  // refusal replayed the whole history (~2,000 events), and in a busy campaign it was refused again
  // and again (6 times in a row in a 1,000-row forecast, ~8 s).
  const continueBeforeTick = patched(CONTINUE_BEFORE_TICK_PATCH);
  const continueIfLong = async (): Promise<void> => {
    // Runs recorded before the patch continue as new here, after the tick.
    if (!continueBeforeTick) await continueIfLong();
  };

  for (;;) {
    if (state === CampaignState.CANCELLED && !cancelSent) {
      // Queued contacts are cancelled; running confirmations end CAMPAIGN_CANCELLED (a call in
      // progress ends normally first).
      await fanOut.cancelCampaignConfirmations({ practiceId, campaignId });
      cancelSent = true;
    }
    if (continueBeforeTick) await continueIfLong();
    const tickedAt = Date.now();
    const tick = await db.campaignTick({
      practiceId,
      campaignId,
      maxOutstanding: state === CampaignState.RUNNING ? maxOutstanding : 0,
      maxStarts: STARTS_PER_TICK,
      now: new Date().toISOString(),
    });
    progress = { ...tick.progress, state, limits };
    setCurrentDetails(publicText(`${progressLine(progress)} (run ${carry.run})`));

    const nothingLeft = progress.byStatus.QUEUED === 0 && progress.outstanding === 0;
    if (nothingLeft && state !== CampaignState.PAUSED && !controlPending) {
      if (state === CampaignState.RUNNING) {
        state = CampaignState.COMPLETED;
        await recordControl('complete', { actor: 'campaign workflow' }, { callsPlaced: progress.callsPlaced });
      }
      // Controls still running (an Update that arrived as the campaign ended) finish first.
      await condition(allHandlersFinished);
      return {
        practiceId,
        campaignId,
        state: state as CampaignState.COMPLETED | CampaignState.CANCELLED,
        total: progress.total,
        byStatus: progress.byStatus,
        byOutcome: progress.byOutcome,
        callsPlaced: progress.callsPlaced,
        startedAt: carry.startedAt,
        endedAt: new Date().toISOString(),
      };
    }

    const now = workflowInfo();
    if (now.historyLength > (input.continueAsNewAfterEvents ?? HISTORY_EVENTS_LIMIT) || now.continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof campaignWorkflow>({
        ...input,
        carried: { state, limits, run: carry.run + 1, startedAt: carry.startedAt },
      });
    }

    const room = state === CampaignState.RUNNING && progress.byStatus.QUEUED > 0 ? maxOutstanding - progress.outstanding : 0;
    // Room for more and this tick could start some: the next tick at once (bounded work per tick).
    if (room > 0 && tick.started + tick.skipped > 0 && !controlPending) continue;
    // Soon while there is something to do now; else until the soonest waiting call (bounded).
    const busy = tick.started > 0 || progress.callsInProgress > 0 || room > 0 || state === CampaignState.CANCELLED;
    let sleepMs = ACTIVE_TICK_MS;
    if (!busy) {
      const next = progress.nextCallAt ? Date.parse(progress.nextCallAt) - Date.now() : IDLE_TICK_MS;
      sleepMs = Math.min(IDLE_TICK_MS, Math.max(ACTIVE_TICK_MS, next));
    }
    // Something that arrived during this tick (a confirmation's end, a control) is counted at once:
    // the tick may have read the database before it.
    if (!wake) await condition(() => wake, sleepMs);
    wake = false;
    // Woken by a confirmation's end: let a burst of them gather (one tick, not one per confirmation).
    const gather = MIN_TICK_GAP_MS - (Date.now() - tickedAt);
    if (gather > 0 && !controlPending) await condition(() => controlPending, gather);
    controlPending = false;
  }
}
