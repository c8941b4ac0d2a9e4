/**
 * Backend API of campaigns, beside `ConfirmationClient`: start a campaign whose contacts were
 * imported, watch it, pause, resume, cancel, change its limits, list campaigns. Every argument is
 * validated here, before it reaches Temporal, with errors that name the field.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  campaignLimitsUpdate,
  campaignRowsAddedUpdate,
  campaignStatusQuery,
  campaignWorkflowId,
  cancelCampaignUpdate,
  pauseCampaignUpdate,
  publicText,
  resumeCampaignUpdate,
  SearchAttr,
  TASK_QUEUE,
  type CampaignProgress,
  type CampaignStatus,
  type CampaignSummary,
  type ControlAck,
  type ControlRequest,
  type LimitsChange,
} from '../contracts';
import type { UpdateDefinition } from '@temporalio/common';
import type { Sql } from '../store/sql';
import { validateControlRequest, validateId, validateLimitsChange, validateRowsAdded, ValidationError } from '../validation';
import { importCsv, importJsonRows, type CsvInput, type ImportOptions, type ImportReport } from './import';
import { campaignProgress, getCampaign, listCampaigns, type StoredCampaign } from './queue';
import { createCampaign, type CampaignSettings } from './store';
// Type-only: the client never loads workflow code, it names the workflow type.
import type { campaignWorkflow } from '../../workflows';

/** Result of {@link CampaignClient.startWorkflow}. */
export interface StartedCampaign {
  workflowId: string;
  runId: string;
  /** False when the campaign was already running (or had ended): nothing new was started. */
  created: boolean;
  /** Temporal status (`RUNNING`, `COMPLETED`, …). */
  status: string;
}

/** A campaign's status: the workflow's state, fresh counts from the database, and Temporal's status. */
export interface CampaignView extends CampaignStatus {
  practiceId: string;
  campaignId: string;
  workflowId: string;
  /** Temporal status of the campaign workflow (`RUNNING`, `COMPLETED`, …), or `NOT_STARTED`. */
  workflowStatus: string;
  /** Counted now from the database. */
  progress: CampaignProgress;
}

/** A control the campaign refused (its state does not allow it, or a bad argument). */
export class CampaignControlError extends Error {
  override readonly name = 'CampaignControlError';
}

export interface CampaignClientOptions {
  /** A Temporal client built with the project's data converter. */
  client: Client;
  /** The project database (campaign tables). */
  sql: Sql;
  /** Task queue of the worker. Default {@link TASK_QUEUE}. */
  taskQueue?: string;
  /** Clock (time-skipping tests). */
  now?: () => Date | Promise<Date>;
}

/** Campaigns API. */
export class CampaignClient {
  private readonly client: Client;
  private readonly sql: Sql;
  private readonly taskQueue: string;
  private readonly now: () => Date | Promise<Date>;

  constructor(options: CampaignClientOptions) {
    this.client = options.client;
    this.sql = options.sql;
    this.taskQueue = options.taskQueue ?? TASK_QUEUE;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Creates the campaign (idempotent), imports its contacts — CSV (`csv`) or JSON rows (`rows`) —
   * and starts its workflow. Returns the import report (bad rows by line, field and problem; valid
   * rows go ahead) and the workflow. A second start of the same campaign with the same file adds
   * nothing and returns the running campaign; new rows are queued and the campaign told.
   */
  async start(
    settings: CampaignSettings,
    contacts: { csv: CsvInput } | { rows: unknown },
    options: { maxOutstanding?: number; actor?: string; onProgress?: ImportOptions['onProgress'] } = {},
  ): Promise<{ report: ImportReport; workflow: StartedCampaign; ignoredChanges: string[] }> {
    const { campaign, ignoredChanges } = await createCampaign(this.sql, settings);
    const report = await this.importInto(campaign, contacts, options.onProgress);
    const workflow = await this.startWorkflow(campaign.practiceId, campaign.campaignId, options);
    if (!workflow.created && workflow.status === 'RUNNING' && report.added > 0) {
      await this.rowsAdded(campaign.practiceId, campaign.campaignId, { actor: options.actor ?? 'api', added: report.added });
    }
    return { report, workflow, ignoredChanges };
  }

  /**
   * Adds rows to an existing campaign (running or not started): imported like the first ones
   * (duplicates and appointments confirmed elsewhere are reported, not queued), then the running
   * campaign is told, audited with `actor`.
   */
  async addRows(practiceId: string, campaignId: string, contacts: { csv: CsvInput } | { rows: unknown }, control: ControlRequest, options: { onProgress?: ImportOptions['onProgress'] } = {}): Promise<ImportReport> {
    const checked = validateControlRequest(control);
    const campaign = await this.require(practiceId, campaignId);
    const report = await this.importInto(campaign, contacts, options.onProgress);
    if (report.added > 0) {
      try {
        await this.rowsAdded(campaign.practiceId, campaign.campaignId, { ...checked, added: report.added });
      } catch (err) {
        // Not started yet: the rows wait in the queue for its start.
        if (!(err instanceof CampaignControlError && /not running/.test(err.message))) throw err;
      }
    }
    return report;
  }

  private async importInto(campaign: StoredCampaign, contacts: { csv: CsvInput } | { rows: unknown }, onProgress?: ImportOptions['onProgress']): Promise<ImportReport> {
    const ids = { practiceId: campaign.practiceId, campaignId: campaign.campaignId };
    const options: ImportOptions = { now: await this.now(), ...(onProgress ? { onProgress } : {}) };
    return 'csv' in contacts ? importCsv(this.sql, ids, contacts.csv, options) : importJsonRows(this.sql, ids, contacts.rows, options);
  }

  /**
   * Starts the workflow of a campaign whose row and contacts are in the database. Idempotent: a
   * second start returns the existing campaign (running or ended), never a second one.
   */
  async startWorkflow(practiceId: string, campaignId: string, options: { maxOutstanding?: number } = {}): Promise<StartedCampaign> {
    const campaign = await this.require(practiceId, campaignId);
    const workflowId = campaignWorkflowId(campaign.practiceId, campaign.campaignId);
    try {
      const handle = await this.client.workflow.start<typeof campaignWorkflow>('campaignWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [{ practiceId: campaign.practiceId, campaignId: campaign.campaignId, ...(options.maxOutstanding ? { maxOutstanding: options.maxOutstanding } : {}) }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: SearchAttr.PracticeId, value: campaign.practiceId },
          { key: SearchAttr.CampaignId, value: campaign.campaignId },
        ],
        // Shown in the Web UI without the codec: ids and the practice only.
        staticSummary: publicText(`Campaign ${campaign.campaignId} of ${campaign.practiceName}`),
        staticDetails: publicText(`Practice ${campaign.practiceId}. Contacts are in the database (campaign_contacts), not in this history; each confirmation carries the CampaignId search attribute.`),
      });
      return { workflowId, runId: handle.firstExecutionRunId, created: true, status: 'RUNNING' };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const d = await this.client.workflow.getHandle(workflowId).describe();
      return { workflowId, runId: d.runId, created: false, status: d.status.name };
    }
  }

  /** State, limits and progress (counted now from the database). */
  async status(practiceId: string, campaignId: string): Promise<CampaignView> {
    const campaign = await this.require(practiceId, campaignId);
    const workflowId = campaign.workflowId;
    const progress = await campaignProgress(this.sql, campaign, await this.now());
    let workflowStatus = 'NOT_STARTED';
    let status: CampaignStatus = { state: campaign.state, limits: campaign.limits, run: 0 };
    try {
      const handle = this.client.workflow.getHandle(workflowId);
      const description = await handle.describe();
      workflowStatus = description.status.name;
      if (workflowStatus === 'RUNNING') status = await handle.query(campaignStatusQuery);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    return { ...status, practiceId: campaign.practiceId, campaignId: campaign.campaignId, workflowId, workflowStatus, progress: { ...progress, state: status.state, limits: status.limits } };
  }

  /** Pause: no new calls; calls in progress finish; waiting confirmations hold. */
  async pause(practiceId: string, campaignId: string, control: ControlRequest): Promise<ControlAck> {
    return this.control(practiceId, campaignId, pauseCampaignUpdate, validateControlRequest(control));
  }

  /** Resume a paused campaign. */
  async resume(practiceId: string, campaignId: string, control: ControlRequest): Promise<ControlAck> {
    return this.control(practiceId, campaignId, resumeCampaignUpdate, validateControlRequest(control));
  }

  /** Cancel: confirmations not yet decided end CAMPAIGN_CANCELLED; calls in progress end normally. */
  async cancel(practiceId: string, campaignId: string, control: ControlRequest): Promise<ControlAck> {
    return this.control(practiceId, campaignId, cancelCampaignUpdate, validateControlRequest(control));
  }

  /** Changes the campaign's channels and/or calls per second while it runs. */
  async setLimits(practiceId: string, campaignId: string, change: LimitsChange): Promise<ControlAck> {
    return this.control(practiceId, campaignId, campaignLimitsUpdate, validateLimitsChange(change));
  }

  /** Tells a running campaign that `added` rows were imported into it. */
  async rowsAdded(practiceId: string, campaignId: string, control: ControlRequest & { added: number }): Promise<ControlAck> {
    return this.control(practiceId, campaignId, campaignRowsAddedUpdate, validateRowsAdded(control));
  }

  /** Campaigns, newest first (of one practice when given). */
  async list(practiceId?: string): Promise<StoredCampaign[]> {
    return listCampaigns(this.sql, practiceId === undefined ? undefined : validateId('practiceId', practiceId));
  }

  /** Waits for the campaign's summary (counts only). */
  async result(practiceId: string, campaignId: string): Promise<CampaignSummary> {
    const campaign = await this.require(practiceId, campaignId);
    return this.client.workflow.getHandle<typeof campaignWorkflow>(campaign.workflowId).result();
  }

  private async control<A>(practiceId: string, campaignId: string, update: UpdateDefinition<ControlAck, [A]>, arg: A): Promise<ControlAck> {
    const campaign = await this.require(practiceId, campaignId);
    try {
      return await this.client.workflow.getHandle(campaign.workflowId).executeUpdate(update, { args: [arg] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new CampaignControlError(`campaignId: campaign ${campaign.campaignId} is not running (start it first, or it has ended)`);
      if (err instanceof WorkflowUpdateFailedError) throw new CampaignControlError((err.cause as Error | undefined)?.message ?? err.message);
      throw err;
    }
  }

  private async require(practiceId: string, campaignId: string): Promise<StoredCampaign> {
    const practice = validateId('practiceId', practiceId);
    const campaign = validateId('campaignId', campaignId);
    const found = await getCampaign(this.sql, practice, campaign);
    if (!found) throw new ValidationError([{ field: 'campaignId', problem: `no campaign ${campaign} of practice ${practice} (import its contacts first)` }]);
    return found;
  }
}
