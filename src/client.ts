/**
 * The backend API: start, inspect, cancel and move confirmations, and honour opt-outs.
 * Everything is validated here, before it reaches Temporal, with errors that name the field.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import {
  appointmentCancelledSignal,
  appointmentMovedSignal,
  confirmationWorkflowId,
  legacyConfirmationWorkflowId,
  optOutSignal,
  replanSignal,
  Phase,
  publicText,
  SearchAttr,
  statusQuery,
  TASK_QUEUE,
  type ConfirmationResult,
  type ConfirmationStatus,
  type TimeZoneOverrideInput,
} from './contracts';
import type { ConfirmationStore, TimeZoneOverride } from './ports';
import { validateTimeZoneOverride } from './time-zone-override';
import {
  validateConfirmationRequest,
  validateConsent,
  validateFutureTime,
  validateId,
  validatePhone,
  validateText,
  validateWorkflowId,
} from './validation';
// Type-only: the client never loads workflow code, it names the workflow type.
import type { confirmAppointmentWorkflow } from '../workflows';

/** Result of {@link ConfirmationClient.startConfirmation}. */
export interface StartedConfirmation {
  workflowId: string;
  runId: string;
  /** False when the confirmation was already running (or had finished): nothing new was started. */
  created: boolean;
  /** Temporal status of the workflow (`RUNNING`, `COMPLETED`, …). */
  status: string;
}

/** Status of a confirmation: the workflow's own view plus Temporal's. */
export interface ConfirmationView extends ConfirmationStatus {
  workflowId: string;
  /** Temporal status of the workflow (`RUNNING`, `COMPLETED`, …). */
  workflowStatus: string;
}

export interface ConfirmationClientOptions {
  /** A Temporal client built with the project's data converter ({@link createDataConverter}). */
  client: Client;
  /** The database, for opt-outs and consent; required by those two calls only. */
  store?: ConfirmationStore;
  /** Task queue of the confirmation worker. Default {@link TASK_QUEUE}. */
  taskQueue?: string;
  /** Clock, for tests (a time-skipping test server's clock is asynchronous, and far from the wall clock). */
  now?: () => Date | Promise<Date>;
}

/** Backend API of call-campaigns. */
export class ConfirmationClient {
  private readonly client: Client;
  private readonly store?: ConfirmationStore;
  private readonly taskQueue: string;
  private readonly now: () => Date | Promise<Date>;

  constructor(options: ConfirmationClientOptions) {
    this.client = options.client;
    this.store = options.store;
    this.taskQueue = options.taskQueue ?? TASK_QUEUE;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Starts the confirmation of one appointment. Idempotent: the workflow id is derived from the
   * practice and appointment, so a second start returns the existing confirmation (never a second
   * workflow, never a second call).
   */
  async startConfirmation(input: unknown, options: { now?: Date } = {}): Promise<StartedConfirmation> {
    // `now`: the clock the request is checked against (a campaign passes its workflow's time).
    const request = validateConfirmationRequest(input, options.now ?? (await this.now()));
    const workflowId = confirmationWorkflowId(request.practiceId, request.appointmentId);
    // A confirmation of this appointment started under the old id scheme is the same confirmation.
    const legacy = await this.findLegacy(request.practiceId, request.appointmentId);
    if (legacy) return { workflowId: legacy.workflowId, runId: legacy.runId, created: false, status: legacy.status };
    try {
      const handle = await this.client.workflow.start<typeof confirmAppointmentWorkflow>('confirmAppointmentWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [request],
        // The server rejects a second start of the same id, running or closed: that is the dedup.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: SearchAttr.AppointmentId, value: request.appointmentId },
          { key: SearchAttr.PracticeId, value: request.practiceId },
          ...(request.campaignId ? [{ key: SearchAttr.CampaignId, value: request.campaignId }] : []),
          { key: SearchAttr.Phase, value: Phase.PLANNING },
        ],
        // Readable in the Web UI without the codec (marked public, left unencrypted): ids and the
        // practice only — no patient name, no number, no appointment time (health data).
        staticSummary: publicText(`Confirm appointment ${request.appointmentId} for ${request.practiceName}`),
        staticDetails: publicText(
          `Practice ${request.practiceId}${request.campaignId ? `, campaign ${request.campaignId}` : ''}. Phase, attempt and next call time: current details and search attributes. Patient and appointment details are encrypted in the workflow input.`,
        ),
      });
      return { workflowId, runId: handle.firstExecutionRunId, created: true, status: 'RUNNING' };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const description = await this.client.workflow.getHandle(workflowId).describe();
      return { workflowId, runId: description.runId, created: false, status: description.status.name };
    }
  }

  /** Current status of a confirmation, by workflow id. */
  async getStatus(workflowId: string): Promise<ConfirmationView> {
    validateWorkflowId('workflowId', workflowId);
    const handle = this.client.workflow.getHandle(workflowId);
    const [status, description] = await Promise.all([handle.query(statusQuery), handle.describe()]);
    return { ...status, workflowId, workflowStatus: description.status.name };
  }

  /** Waits for a confirmation's result. */
  async result(workflowId: string): Promise<ConfirmationResult> {
    validateWorkflowId('workflowId', workflowId);
    return this.client.workflow.getHandle<typeof confirmAppointmentWorkflow>(workflowId).result();
  }

  /** The practice cancelled the appointment: stop its confirmation (APPOINTMENT_CANCELLED). */
  async cancel(practiceId: string, appointmentId: string): Promise<void> {
    const workflowId = await this.workflowIdOf(validateId('practiceId', practiceId), validateId('appointmentId', appointmentId));
    await this.client.workflow.getHandle(workflowId).signal(appointmentCancelledSignal);
  }

  /** The appointment moved: the confirmation re-plans its deadline and next call. */
  async moveAppointment(practiceId: string, appointmentId: string, appointmentStart: string): Promise<void> {
    const [practice, appointment] = [validateId('practiceId', practiceId), validateId('appointmentId', appointmentId)];
    // Everything is checked before anything reaches Temporal.
    const start = validateFutureTime('appointmentStart', appointmentStart, await this.now());
    const workflowId = await this.workflowIdOf(practice, appointment);
    await this.client.workflow.getHandle(workflowId).signal(appointmentMovedSignal, { appointmentStart: start });
  }

  /**
   * The workflow id of an appointment's confirmation: the derived id, or the old-scheme id of a
   * confirmation still running under it.
   */
  async workflowIdOf(practiceId: string, appointmentId: string): Promise<string> {
    const legacy = await this.findLegacy(practiceId, appointmentId);
    return legacy?.workflowId ?? confirmationWorkflowId(practiceId, appointmentId);
  }

  /**
   * A confirmation of this appointment that runs under the old `confirm-<practice>-<appointment>`
   * id. That id is ambiguous (`-` is allowed in both ids), so it counts only when its search
   * attributes name this very practice and appointment. Running or closed, it is that appointment's
   * confirmation (as a second start under the old scheme was rejected too).
   */
  private async findLegacy(practiceId: string, appointmentId: string): Promise<{ workflowId: string; runId: string; status: string } | undefined> {
    const workflowId = legacyConfirmationWorkflowId(practiceId, appointmentId);
    let description;
    try {
      description = await this.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
    const attrs = description.typedSearchAttributes;
    const same = attrs.get(SearchAttr.PracticeId) === practiceId && attrs.get(SearchAttr.AppointmentId) === appointmentId;
    if (!same) return undefined;
    return { workflowId, runId: description.runId, status: description.status.name };
  }

  /**
   * The patient asked not to be called (any channel): the number goes on the do-not-call list first
   * (so no later plan can dial it), then every running confirmation for it is told to stop.
   * Returns how many confirmations were signalled.
   */
  async optOut(phone: string, source = 'api'): Promise<{ signalled: number }> {
    const store = this.requireStore('optOut');
    const number = validatePhone('phone', phone);
    await store.addDoNotCall(number, validateText('source', source), 'patient opted out');
    return { signalled: await this.stopConfirmationsOf(number) };
  }

  /** Signals opt-out to every running confirmation of `phone` except `exceptWorkflowId`. */
  async stopConfirmationsOf(phone: string, exceptWorkflowId?: string): Promise<number> {
    const store = this.requireStore('optOut');
    const number = validatePhone('phone', phone);
    if (exceptWorkflowId !== undefined) validateWorkflowId('exceptWorkflowId', exceptWorkflowId);
    const ids = (await store.activeWorkflowIdsForPhone(number)).filter((id) => id !== exceptWorkflowId);
    return this.signalEach(ids, optOutSignal);
  }

  /** Sends `signal` to each workflow; one closed in the meantime is skipped. Returns how many got it. */
  private async signalEach(workflowIds: string[], signal: SignalDefinition<[]>): Promise<number> {
    let signalled = 0;
    for (const workflowId of workflowIds) {
      try {
        await this.client.workflow.getHandle(workflowId).signal(signal);
        signalled += 1;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    return signalled;
  }

  /**
   * Records the patient's consent (or its withdrawal) to calls from the practice. Every field is
   * checked (types, bounds, no unknown fields) before the append-only consent table sees it.
   */
  async recordConsent(input: { practiceId: string; phone: string; patientId?: string; granted: boolean; source: string }): Promise<void> {
    const store = this.requireStore('recordConsent');
    await store.recordConsent(validateConsent(input));
  }

  /**
   * Records that the patient of a number lives in another zone than the number's own (a number kept
   * after a move), or withdraws that (`zone: null`). While it is in force the calling window is
   * checked in that zone alone, for this practice's confirmations of the number; each record is
   * kept (append-only, with who and why) and each planning decision names the override it used.
   * Returns the record's id.
   */
  async recordTimeZoneOverride(input: TimeZoneOverrideInput): Promise<number> {
    const store = this.requireStore('recordTimeZoneOverride');
    const valid = validateTimeZoneOverride(input);
    const id = await store.recordTimeZoneOverride(valid);
    await this.replanConfirmationsOf(valid.practiceId, valid.phone);
    return id;
  }

  /**
   * Tells the practice's running confirmations of a number to plan again now (after a time-zone
   * override: a wait computed from the old zone may end hours after the window opened in the new
   * one). Returns how many were told.
   */
  async replanConfirmationsOf(practiceId: string, phone: string): Promise<number> {
    const store = this.requireStore('replanConfirmationsOf');
    return this.signalEach(await store.activeWorkflowIdsForPhone(validatePhone('phone', phone), validateId('practiceId', practiceId)), replanSignal);
  }

  /** The time-zone override in force for the practice and number, if any. */
  async timeZoneOverride(practiceId: string, phone: string): Promise<TimeZoneOverride | undefined> {
    const store = this.requireStore('timeZoneOverride');
    return store.timeZoneOverride(validateId('practiceId', practiceId), validatePhone('phone', phone));
  }

  private requireStore(call: string): ConfirmationStore {
    if (!this.store) throw new Error(`${call} needs the database: pass \`store\` to ConfirmationClient`);
    return this.store;
  }
}
