/**
 * The appointment-confirmation agent: a `voice.Agent` whose zod-typed tools are the patient's
 * possible answers. Every tool reports its outcome as the workflow's `outcome` Update and waits for
 * the acknowledgement before the patient hears that it is done; the keypad uses the same path.
 */
import { llm, voice } from '@livekit/agents';
import { z } from 'zod';
import { CallOutcome, type AgentJobMetadata, type OutcomeDetail } from '../src/contracts';
import { safeMessage } from '../src/errors';
import { OUTCOME_DETAIL_MAX_CHARS } from '../src/validation';
import type { OutcomeReporter, ReportResult } from './reporter';
import { instructions, lateReply, replyFor } from './script';

/** What the agent needs from the call around it. */
export interface CallControl {
  meta: AgentJobMetadata;
  reporter: OutcomeReporter;
  /** Transfers the patient to the practice (SIP transfer); absent when no number is configured. */
  transfer?: () => Promise<void>;
  /**
   * A warm transfer to the front desk is configured (agent/warm-transfer.ts): asking for staff is
   * heard but not reported at once; the call runs the transfer, which reports the outcome.
   */
  warmTransfer?: boolean;
}

/** The outcome of the call once settled. */
export interface Settled {
  outcome: CallOutcome;
  /** False when the workflow no longer took it (it was audited as a late outcome). */
  accepted: boolean;
  /** What the patient is told. */
  reply: string;
}

/** An answer the patient gave, from the moment it was heard (before any acknowledgement). */
export interface Heard {
  outcome: CallOutcome;
  detail?: OutcomeDetail;
}

/** How long a tool waits for the workflow's acknowledgement before the patient is told the answer is noted, in ms. */
export const ACK_WAIT_MS = 8_000;

export class ConfirmationAgent extends voice.Agent {
  /** Set once an outcome is reported; the call ends after the goodbye. */
  settled?: Settled;
  /**
   * Set the moment the patient's answer is heard: from then on the agent never re-prompts or says
   * the no-answer goodbye, and the answer is kept until the workflow acknowledges it or it is
   * written as a late outcome ({@link settled}).
   */
  heard?: Heard;
  readonly #heardListeners: ((h: Heard) => void)[] = [];
  readonly #control: CallControl;
  #settling?: Promise<Settled>;
  readonly #listeners: ((s: Settled) => void)[] = [];

  constructor(control: CallControl) {
    super({
      instructions: instructions(control.meta),
      tools: {
        confirm_appointment: llm.tool({
          description: 'The patient confirms they will come to the appointment.',
          execute: async () => this.#toolReply(CallOutcome.CONFIRMED),
        }),
        cancel_appointment: llm.tool({
          description: 'The patient wants to cancel the appointment.',
          execute: async () => this.#toolReply(CallOutcome.CANCELLED),
        }),
        request_reschedule: llm.tool({
          description: 'The patient wants a different time. Pass the days or times they prefer, as they said them.',
          parameters: z.object({
            // Bounded like the workflow's schema: the model is told at once, not the workflow later.
            preference: z.string().max(OUTCOME_DETAIL_MAX_CHARS.reschedulePreference).describe('Preferred days or times in the patient\'s words, e.g. "Tuesday or Wednesday mornings"'),
          }),
          execute: async ({ preference }) => this.#toolReply(CallOutcome.RESCHEDULE_REQUESTED, { reschedulePreference: preference }),
        }),
        opt_out: llm.tool({
          description: 'The patient asks not to be called again ("stop calling me").',
          execute: async () => this.#toolReply(CallOutcome.OPTED_OUT),
        }),
        wrong_number: llm.tool({
          description: 'The person who answered is not the patient and does not know them.',
          execute: async () => this.#toolReply(CallOutcome.WRONG_NUMBER),
        }),
        transfer_to_staff: llm.tool({
          description: 'The patient asks to speak with a person at the practice.',
          execute: async () => this.#toolReply(CallOutcome.TRANSFERRED),
        }),
      },
    });
    this.#control = control;
  }

  /** Calls `f` once the outcome is settled (at once if it is). */
  onSettled(f: (s: Settled) => void): void {
    if (this.settled) f(this.settled);
    else this.#listeners.push(f);
  }

  /** Calls `f` once the patient's answer is heard (at once if it was). */
  onHeard(f: (h: Heard) => void): void {
    if (this.heard) f(this.heard);
    else this.#heardListeners.push(f);
  }

  /** The settled outcome, or undefined if it is not settled within `ms`. */
  settledWithin(ms: number): Promise<Settled | undefined> {
    if (this.settled) return Promise.resolve(this.settled);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ms);
      this.onSettled((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  /** Resolves once the outcome is settled (acknowledged, or audited as late): the job waits for it before it exits. */
  get settling(): Promise<Settled> | undefined {
    return this.#settling;
  }

  /** Whether a transfer to a person is possible on this call (warm or cold). */
  get canTransfer(): boolean {
    return this.#control.transfer !== undefined || this.#control.warmTransfer === true;
  }

  /** Whether a cold SIP transfer (REFER) is configured. */
  get canColdTransfer(): boolean {
    return this.#control.transfer !== undefined;
  }

  /** Whether "talk to staff" goes through the warm transfer. */
  get warmTransfer(): boolean {
    return this.#control.warmTransfer === true;
  }

  /**
   * Notes the patient's answer as heard without reporting it yet (a warm transfer reports once staff
   * decide): the agent stops re-prompting.
   */
  hear(outcome: CallOutcome): void {
    if (this.heard) return;
    this.heard = { outcome };
    for (const f of this.#heardListeners.splice(0)) f(this.heard);
  }

  /**
   * Reports `outcome` and waits for the workflow's acknowledgement (or the late-outcome record);
   * returns what to tell the patient. Reports once per call: later answers get the first result.
   */
  settle(outcome: CallOutcome, detail?: OutcomeDetail): Promise<Settled> {
    if (!this.heard) {
      this.heard = { outcome, detail };
      for (const f of this.#heardListeners.splice(0)) f(this.heard);
    }
    this.#settling ??= (async () => {
      const { meta, reporter } = this.#control;
      // The reporter keeps the answer until the workflow takes it or it is audited as late; it
      // throws only when neither could be done (Temporal unreachable the whole time).
      const result = await reporter.report({ attempt: meta.attempt, outcome, detail }).catch(
        (err: unknown): ReportResult => ({ accepted: false, reason: `not recorded: ${safeMessage(err)}` }),
      );
      const settled: Settled = { outcome, accepted: result.accepted, reply: result.accepted ? replyFor(outcome, meta) : lateReply(meta) };
      this.settled = settled;
      for (const f of this.#listeners.splice(0)) f(settled);
      return settled;
    })();
    return this.#settling;
  }

  /** The transfer itself, after the patient heard "connecting you". */
  async transfer(): Promise<void> {
    await this.#control.transfer?.();
  }

  /** Tool result the LLM turns into its last words. */
  async #toolReply(outcome: CallOutcome, detail?: OutcomeDetail): Promise<string> {
    if (outcome === CallOutcome.TRANSFERRED && !this.canTransfer) {
      return 'No one can take a transfer right now. Say the front desk will call them back, then ask whether they can make the appointment.';
    }
    if (outcome === CallOutcome.TRANSFERRED && this.warmTransfer) {
      // The call puts the patient on hold and dials the front desk once this reply is spoken.
      this.hear(outcome);
      return 'Say exactly: "One moment, I\'ll get someone from our front desk. Please stay on the line."';
    }
    void this.settle(outcome, detail);
    // The patient must not wait in silence for a workflow that cannot take the answer yet: the
    // answer is kept (acknowledged later, or audited as late) whatever is said now.
    const s = await this.settledWithin(ACK_WAIT_MS);
    if (s === undefined) return `noted ${outcome}; the office will have it. Say exactly: "${lateReply(this.#control.meta)}"`;
    const status = s.accepted ? `recorded ${s.outcome}` : `noted ${s.outcome} for the office`;
    return `${status}. Say exactly: "${s.reply}"`;
  }
}
