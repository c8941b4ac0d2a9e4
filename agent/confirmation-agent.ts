/**
 * The appointment-confirmation agent: a `voice.Agent` whose zod-typed tools are the patient's
 * possible answers. Every tool reports its outcome as the workflow's `outcome` Update and waits for
 * the acknowledgement before the patient hears that it is done; the keypad uses the same path.
 */
import { llm, voice } from '@livekit/agents';
import { z } from 'zod';
import { CallOutcome, type AgentJobMetadata, type OutcomeDetail } from '../src/contracts';
import { OUTCOME_DETAIL_MAX_CHARS } from '../src/validation';
import type { OutcomeReporter } from './reporter';
import { instructions, lateReply, replyFor } from './script';

/** What the agent needs from the call around it. */
export interface CallControl {
  meta: AgentJobMetadata;
  reporter: OutcomeReporter;
  /** Transfers the patient to the practice (SIP transfer); absent when no number is configured. */
  transfer?: () => Promise<void>;
}

/** The outcome of the call once settled. */
export interface Settled {
  outcome: CallOutcome;
  /** False when the workflow no longer took it (it was audited as a late outcome). */
  accepted: boolean;
  /** What the patient is told. */
  reply: string;
}

export class ConfirmationAgent extends voice.Agent {
  /** Set once an outcome is reported; the call ends after the goodbye. */
  settled?: Settled;
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

  /** Whether a transfer to a person is possible on this call. */
  get canTransfer(): boolean {
    return this.#control.transfer !== undefined;
  }

  /**
   * Reports `outcome` and waits for the workflow's acknowledgement (or the late-outcome record);
   * returns what to tell the patient. Reports once per call: later answers get the first result.
   */
  settle(outcome: CallOutcome, detail?: OutcomeDetail): Promise<Settled> {
    this.#settling ??= (async () => {
      const { meta, reporter } = this.#control;
      const result = await reporter.report({ attempt: meta.attempt, outcome, detail });
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
    const s = await this.settle(outcome, detail);
    const status = s.accepted ? `recorded ${s.outcome}` : `noted ${s.outcome} for the office`;
    return `${status}. Say exactly: "${s.reply}"`;
  }
}
