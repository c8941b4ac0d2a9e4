/**
 * How the agent tells the workflow what the patient said: the `outcome` Update, acknowledged
 * before the agent tells the patient it is done. Transient Temporal errors are retried; an Update
 * the workflow rejects (it decided already, or closed) is recorded by `recordLateOutcomeWorkflow`
 * in the audit log — an outcome the patient gave is never dropped. A malformed report (checked here
 * with the workflow's own schema, and by the workflow's validator) is never sent, never retried and
 * never audited: resending the same bytes cannot succeed.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { CallOutcome, lateOutcomeWorkflowId, outcomeUpdate, type LateOutcomeInput, type OutcomeAck, type OutcomeReport } from '../src/contracts';
import { INVALID_REPORT_FAILURE, validateOutcomeReport, ValidationError } from '../src/validation';
import { safeMessage } from '../src/errors';

/** What came of a report. */
export type ReportResult = { accepted: true; ack: OutcomeAck } | { accepted: false; reason: string };

/** The port the agent reports through (Temporal in production; tests can record instead). */
export interface OutcomeReporter {
  report(report: OutcomeReport): Promise<ReportResult>;
}

export interface TemporalReporterOptions {
  client: Client;
  workflowId: string;
  /** Task queue of the worker that audits late outcomes. */
  taskQueue: string;
  /**
   * Total time spent retrying transient errors of the Update (no worker, server away), in ms; then
   * the answer is audited as a late outcome instead. Default 120 000.
   */
  retryForMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Told how each report ended and how long it took from the call of `report` (the outcome
   * acknowledgement latency, a metric): acknowledged, audited as late, or refused as invalid.
   */
  onSettled?: (outcome: string, result: 'acknowledged' | 'late' | 'invalid', seconds: number) => void;
}

/** Longest rejection reason kept in the late-outcome record. */
const MAX_REASON_CHARS = 500;

/** The workflow's validator refused the report itself (bad types, unknown keys, sizes). */
function invalidReport(err: unknown): string | undefined {
  if (!(err instanceof WorkflowUpdateFailedError)) return undefined;
  const cause = err.cause;
  return cause instanceof ApplicationFailure && cause.type === INVALID_REPORT_FAILURE ? cause.message : undefined;
}

/** Errors that say the workflow will not take this outcome (as opposed to "could not reach it"). */
function rejection(err: unknown): string | undefined {
  if (err instanceof WorkflowUpdateFailedError) return ((err.cause as Error | undefined)?.message ?? err.message).slice(0, MAX_REASON_CHARS);
  if (err instanceof WorkflowNotFoundError) return 'workflow closed';
  const message = (err as Error)?.message ?? '';
  if (/workflow execution already completed|already completed/i.test(message)) return 'workflow closed';
  return undefined;
}

export function temporalReporter(options: TemporalReporterOptions): OutcomeReporter {
  const reporter = untimedReporter(options);
  return {
    async report(report: OutcomeReport): Promise<ReportResult> {
      const startedAt = performance.now();
      const result = await reporter.report(report);
      const settled = result.accepted ? 'acknowledged' : result.reason.startsWith('invalid report:') ? 'invalid' : 'late';
      // The class as a metric label only when it is one (an invalid report's is anything).
      const outcome = (Object.values(CallOutcome) as string[]).includes(String(report.outcome)) ? String(report.outcome) : 'other';
      options.onSettled?.(outcome, settled, (performance.now() - startedAt) / 1000);
      return result;
    },
  };
}

function untimedReporter(options: TemporalReporterOptions): OutcomeReporter {
  const { client, workflowId, taskQueue } = options;
  const retryForMs = options.retryForMs ?? 120_000;
  const log = options.log ?? (() => undefined);
  return {
    async report(report: OutcomeReport): Promise<ReportResult> {
      try {
        report = validateOutcomeReport(report);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        log('outcome report is malformed; not sent', { workflowId, problems: err.message });
        return { accepted: false, reason: `invalid report: ${err.message}` };
      }
      const handle = client.workflow.getHandle(workflowId);
      const until = Date.now() + retryForMs;
      for (let delayMs = 200; ; delayMs = Math.min(delayMs * 2, 3_000)) {
        try {
          const ack = await handle.executeUpdate(outcomeUpdate, { args: [report] });
          return { accepted: true, ack };
        } catch (err) {
          const invalid = invalidReport(err);
          if (invalid !== undefined) {
            // Rules differ between this agent and the workflow (a rolling deploy): same answer as above.
            log('outcome report refused as malformed by the workflow; not retried', { workflowId, problems: invalid });
            return { accepted: false, reason: `invalid report: ${invalid}` };
          }
          const reason = rejection(err);
          if (reason !== undefined) {
            await recordLate({ workflowId, attempt: report.attempt, outcome: report.outcome, detail: report.detail, reason, reportedAt: new Date().toISOString() });
            log('outcome not taken by the workflow; audited as late', { workflowId, attempt: report.attempt, outcome: report.outcome });
            return { accepted: false, reason };
          }
          if (Date.now() + delayMs > until) {
            // Never acknowledged: keep the answer anyway, as a late outcome (a workflow start is
            // durable once the server has it, even while no worker runs).
            const why = `not acknowledged within ${Math.round(retryForMs / 1000)} s`;
            await withRetries(() =>
              recordLate({ workflowId, attempt: report.attempt, outcome: report.outcome, detail: report.detail, reason: why, reportedAt: new Date().toISOString() }),
            );
            log('outcome not acknowledged; audited as late', { workflowId, attempt: report.attempt, outcome: report.outcome });
            return { accepted: false, reason: why };
          }
          log('outcome report failed; retrying', { workflowId, error: safeMessage(err) });
          await new Promise((r) => setTimeout(r, delayMs));
        }
      }
    },
  };

  /** Retries `f` for up to `retryForMs` more (the late record must not be lost to a short outage). */
  async function withRetries(f: () => Promise<void>): Promise<void> {
    const until = Date.now() + retryForMs;
    for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 5_000)) {
      try {
        return await f();
      } catch (err) {
        if (Date.now() + delayMs > until) throw err;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  async function recordLate(input: LateOutcomeInput): Promise<void> {
    try {
      await client.workflow.start('recordLateOutcomeWorkflow', {
        workflowId: lateOutcomeWorkflowId(input),
        taskQueue,
        // The reason is free text from errors: kept to what the late-outcome record accepts.
        // eslint-disable-next-line no-control-regex -- control characters are what is removed
        args: [{ ...input, reason: input.reason.replace(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]+/g, ' ').trim().slice(0, MAX_REASON_CHARS) || 'not taken' }],
      });
    } catch (err) {
      // Reported already (a retried tool call): the first recording stands.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
}
