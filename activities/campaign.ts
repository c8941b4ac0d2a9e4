/**
 * Activities of the campaign workflow, built by the worker: `createCampaignActivities(deps)`. They
 * read the campaign's contacts from the database and start confirmations through the client API,
 * so the campaign's history carries counts, never a contact.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ConfirmationClient } from '../src/client';
import {
  campaignCancelledSignal,
  Phase,
  SearchAttr,
  type CampaignActivities,
  type CampaignControlRecord,
  type CampaignProgress,
  type CampaignTickInput,
  type CampaignTickResult,
} from '../src/contracts';
import {
  appendCampaignEvent,
  campaignProgress,
  cancelQueued,
  getCampaign,
  markSkipped,
  markStarted,
  nextQueued,
  runningConfirmations,
  setCampaignState,
  type StoredCampaign,
} from '../src/campaigns/queue';
import type { Queryable } from '../src/store/sql';
import { ValidationError } from '../src/validation';

/** What the campaign activities need; the worker builds these from config. */
export interface CampaignActivityDeps {
  /** The project database (campaign tables, appointments, ledger). */
  sql: Queryable;
  /** The Temporal client (the project's data converter): signals and describes. */
  client: Client;
  /** Starts confirmations (validation, derived ids, search attributes): the same path as a single start. */
  confirmations: ConfirmationClient;
  logger: Logger;
  /** Confirmations started at once by one tick. Default 8. */
  startConcurrency?: number;
  /**
   * A tick stops starting confirmations after this long (ms; the rest wait for the next tick, which
   * follows at once). Default 10 000. Why: the tick is a local activity, and everything that arrives
   * meanwhile — above all the signals of ending confirmations — lands in the campaign's history
   * before the workflow can next check its length; on a loaded host 100 starts took minutes and a
   * run overshot its 2,000-event bound to 5,180.
   */
  maxTickMs?: number;
}

/** Failure type when the campaign row is missing (started without an import): non-retryable. */
export const UNKNOWN_CAMPAIGN_FAILURE = 'UNKNOWN_CAMPAIGN';

/** Builds the campaign activities. */
export function createCampaignActivities(deps: CampaignActivityDeps): CampaignActivities {
  const { sql, client, confirmations, logger } = deps;
  const concurrency = Math.max(1, deps.startConcurrency ?? 8);
  const maxTickMs = deps.maxTickMs ?? 10_000;

  async function campaign(practiceId: string, campaignId: string): Promise<StoredCampaign> {
    const found = await getCampaign(sql, practiceId, campaignId);
    if (!found) {
      throw ApplicationFailure.create({
        type: UNKNOWN_CAMPAIGN_FAILURE,
        nonRetryable: true,
        message: `campaignId: no campaign ${campaignId} of practice ${practiceId} in the database (import its contacts first: CampaignClient.start or \`campaign start\`)`,
      });
    }
    return found;
  }

  /**
   * Whether an existing confirmation (a start that found the id taken) is this campaign's own: a
   * retried tick finds the confirmations it started before it could mark them.
   */
  async function ownConfirmation(workflowId: string, c: StoredCampaign): Promise<boolean> {
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      return d.typedSearchAttributes.get(SearchAttr.CampaignId) === c.campaignId && d.typedSearchAttributes.get(SearchAttr.PracticeId) === c.practiceId;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  return {
    async loadCampaign({ practiceId, campaignId }) {
      const c = await campaign(practiceId, campaignId);
      return { state: c.state, limits: c.limits };
    },

    async campaignTick(input: CampaignTickInput): Promise<CampaignTickResult> {
      const c = await campaign(input.practiceId, input.campaignId);
      const now = new Date(input.now);
      const tickStarted = performance.now();
      let started = 0;
      let skipped = 0;
      // Counted once, before the starts (it holds the outstanding count); the starts are added below.
      const before = await campaignProgress(sql, c, now);
      const queue = input.maxOutstanding > 0 ? await nextQueued(sql, c, Math.min(input.maxStarts, input.maxOutstanding - before.outstanding)) : [];
      // A few starts at once: each is a round trip to Temporal and one to the database.
      for (let i = 0; i < queue.length; i += concurrency) {
        if (i > 0 && performance.now() - tickStarted > maxTickMs) break;
        await Promise.all(
          queue.slice(i, i + concurrency).map(async ({ request }) => {
            try {
              const result = await confirmations.startConfirmation(request, { now });
              if (result.created || (await ownConfirmation(result.workflowId, c))) {
                await markStarted(sql, c.practiceId, c.campaignId, request.appointmentId, result.workflowId, now);
                started += 1;
              } else {
                // One confirmation per appointment ever: another campaign or a single start has it.
                await markSkipped(sql, c.practiceId, c.campaignId, request.appointmentId, `already being confirmed (${result.workflowId}, ${result.status})`);
                skipped += 1;
              }
            } catch (err) {
              if (!(err instanceof ValidationError)) throw err;
              // Valid at import, not any more (the appointment is too close or past): never called.
              await markSkipped(sql, c.practiceId, c.campaignId, request.appointmentId, `cannot be confirmed now: ${err.message}`);
              skipped += 1;
            }
          }),
        );
      }
      const progress = withStarts(before, started, skipped);
      if (started + skipped > 0) logger.info({ campaign: c.workflowId, started, skipped, queued: progress.byStatus.QUEUED }, 'campaign confirmations started');
      return { started, skipped, progress };
    },

    async recordCampaignControl(input: CampaignControlRecord): Promise<void> {
      await setCampaignState(sql, input.practiceId, input.campaignId, input.state, input.limits);
      await appendCampaignEvent(sql, {
        idempotencyKey: input.idempotencyKey,
        practiceId: input.practiceId,
        campaignId: input.campaignId,
        action: input.action,
        actor: input.actor,
        reason: input.reason,
        at: new Date(input.at),
        detail: { state: input.state, limits: input.limits, ...input.detail },
      });
      logger.info({ campaign: `${input.practiceId}:${input.campaignId}`, action: input.action, state: input.state, limits: input.limits }, 'campaign control');
    },

    async cancelCampaignConfirmations({ practiceId, campaignId }) {
      const cancelledQueued = await cancelQueued(sql, practiceId, campaignId);
      let signalled = 0;
      const ids = await runningConfirmations(sql, practiceId, campaignId);
      for (let i = 0; i < ids.length; i += concurrency) {
        await Promise.all(
          ids.slice(i, i + concurrency).map(async (workflowId) => {
            try {
              await client.workflow.getHandle(workflowId).signal(campaignCancelledSignal);
              signalled += 1;
            } catch (err) {
              // Ended in the meantime: nothing left to cancel.
              if (!(err instanceof WorkflowNotFoundError)) throw err;
            }
          }),
        );
        Context.current().heartbeat();
      }
      logger.info({ campaign: `${practiceId}:${campaignId}`, signalled, cancelledQueued }, 'campaign cancelled');
      return { signalled, cancelledQueued };
    },
  };
}

/**
 * The progress counted before a tick's starts, with its starts and skips added: each started
 * contact is outstanding and planning (its workflow has not registered a plan yet) — what a
 * recount would find, without a second pass over every contact of the campaign.
 */
function withStarts(before: CampaignProgress, started: number, skipped: number): CampaignProgress {
  if (started + skipped === 0) return before;
  return {
    ...before,
    byStatus: { ...before.byStatus, QUEUED: before.byStatus.QUEUED - started - skipped, STARTED: before.byStatus.STARTED + started, SKIPPED: before.byStatus.SKIPPED + skipped },
    byPhase: { ...before.byPhase, ...(started > 0 ? { [Phase.PLANNING]: (before.byPhase[Phase.PLANNING] ?? 0) + started } : {}) },
    outstanding: before.outstanding + started,
  };
}
