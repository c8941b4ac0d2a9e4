/**
 * Offline understanding: an intent matcher behind the library's `llm.LLM` interface. It turns the
 * patient's transcribed words into the same tool calls the cloud LLM makes (confirm, cancel,
 * reschedule with the preference, opt out, wrong number, talk to staff), and after the tool has run
 * it says the sentence the tool asked for — so the tools, the `outcome` Update, the acknowledgement
 * and the goodbye are the same code in both modes.
 *
 * It never guesses: an answer that matches no intent, or two that conflict ("yes… no, cancel"), or
 * a negated one ("I can't make it" is not a yes), gets a re-prompt, and the keypad still works. A
 * wrong confirmation or cancellation costs a patient their slot; a re-prompt costs seconds.
 */
import { llm, shortuuid, type APIConnectOptions } from '@livekit/agents';
import { OUTCOME_DETAIL_MAX_CHARS } from '../src/validation';

/** What the patient meant, as the agent's tools name it; `unclear` asks again. */
export type Intent = 'confirm_appointment' | 'cancel_appointment' | 'request_reschedule' | 'opt_out' | 'wrong_number' | 'transfer_to_staff' | 'unclear';

// Patterns over the normalised transcript (lower case, letters, digits, apostrophes, single spaces).
const OPT_OUT = /\b(stop (calling|call me|these calls)|(don't|do not|never) call( me)?( again)?|quit calling|take me off|remove me|no more calls|unsubscribe)\b/;
const WRONG = /\b(wrong (number|person)|no one (here )?(by|with) that name|(nobody|no one) (here )?(named|called|by that)|(doesn't|does not|don't|do not) live here|(don't|do not) know (who|him|her|them|anyone)|not (him|her) )/;
const STAFF = /\b((talk|speak) (to|with) (a |an |the )?(someone|somebody|person|human|staff|receptionist|front desk|real person|operator|actual person)|front desk|receptionist|operator|representative)\b/;
// "… to a real person", "… to the staff" with the verb lost to the line: only people are talked *to*
// (a lone "a human" is not enough: a hum decodes as one).
const TO_PERSON = /\b(to|with) ((a |an |the )(real person|actual person|person|human|staff)|someone|somebody)\b/;
const RESCHEDULE = /\b(reschedul\w*|re schedule|another (day|time|date)|different (day|time|date)|(move|change|push|switch) (it|that|(the|my) (appointment|time|date|visit))|later (date|time)|some other (day|time)|instead|how about|can we do)\b/;
const CANCEL = /\bcancel\w*\b/;
const NOT_CANCEL = /\b(don't|do not|not|no need to|won't|never) cancel/;
const CONFIRM = /\b(yes|yeah|yep|yup|sure|correct|absolutely|definitely|of course|okay|ok|confirm\w*|i('ll| will) (be there|come|make it)|i can (make it|come|be there)|(that|it) works|sounds good|see you (then|there))\b/;
// "… to Tuesday morning", "… to the afternoon": a new time, said as where to move it.
const TO_TIME = /\bto (monday|tuesday|wednesday|thursday|friday|saturday|sunday|next week|the (morning|afternoon|evening)|a later)\b/;
const DAY = /\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|next week|later)\b/;
// "Off" turns a yes around ("sure, call it off", "I'm off that day", "put it off"); a question
// beside it ("yes, who's calling?") is not an answer yet.
const NEGATION = /\b(no|not|nope|can't|cannot|can not|won't|don't|unable|never|maybe|unsure|off|who|who's|what|why|calling)\b/;

/** Lower case, words only: what the patterns above read. */
export function normalise(text: string): string {
  return ` ${text.toLowerCase().replace(/[’`]/g, "'").replace(/[^a-z0-9' ]+/g, ' ').replace(/\s+/g, ' ').trim()} `;
}

/** The intent of one transcribed answer; `unclear` whenever it is not one clear wish. */
export function matchIntent(text: string): Intent {
  const t = normalise(text);
  if (OPT_OUT.test(t)) return 'opt_out';
  if (WRONG.test(t)) return 'wrong_number';
  if (STAFF.test(t) || TO_PERSON.test(t)) return 'transfer_to_staff';
  // "Cancel and reschedule", "yes, but can we move it": another time is what they want, and it
  // loses no slot until a person has spoken with them.
  if (RESCHEDULE.test(t)) return 'request_reschedule';
  if (CANCEL.test(t)) return NOT_CANCEL.test(t) || CONFIRM.test(t.replace(CANCEL, ' ')) ? 'unclear' : 'cancel_appointment';
  if (TO_TIME.test(t)) return CONFIRM.test(t) ? 'unclear' : 'request_reschedule';
  // "Yes… Tuesday?" may be naming another day: ask rather than confirm the one on the books.
  if (CONFIRM.test(t)) return NEGATION.test(t) || DAY.test(t) ? 'unclear' : 'confirm_appointment';
  return 'unclear';
}

/** Said to an answer that was not understood. The keypad works all along. */
export const NOT_UNDERSTOOD =
  "Sorry, I didn't catch that. Please say yes to confirm, cancel, or reschedule. Or press 1 to confirm, 2 to cancel, 3 to reschedule, or 0 to speak with our staff.";

/** Said when a transfer was asked for and no one can take it (the tool said so). */
const NO_TRANSFER = 'No one can take your call right now; our front desk will call you back. Can you make your appointment?';

export interface IntentLLMOptions {
  /**
   * Said instead of the plain re-prompt when an unclear answer ("Hello?") cut the agent off: the
   * greeting again, so the patient still hears who is calling, the callback number and the question.
   */
  restart?: string;
}

export class IntentLLM extends llm.LLM {
  readonly options: IntentLLMOptions;

  constructor(options: IntentLLMOptions = {}) {
    super();
    this.options = options;
  }

  label(): string {
    return 'intent-matcher';
  }

  override get model(): string {
    return 'offline-intents';
  }

  override get provider(): string {
    return 'call-campaigns';
  }

  chat({ chatCtx, toolCtx, connOptions }: { chatCtx: llm.ChatContext; toolCtx?: llm.ToolContextLike; connOptions?: APIConnectOptions }): llm.LLMStream {
    return new IntentStream(this, this.options, { chatCtx, toolCtx, connOptions: connOptions ?? { maxRetry: 0, retryIntervalMs: 0, timeoutMs: 10_000 } });
  }
}

class IntentStream extends llm.LLMStream {
  readonly #options: IntentLLMOptions;

  constructor(owner: IntentLLM, options: IntentLLMOptions, params: ConstructorParameters<typeof llm.LLMStream>[1]) {
    super(owner, params);
    this.#options = options;
  }

  protected async run(): Promise<void> {
    const id = shortuuid();
    const last = this.chatCtx.items.at(-1);
    if (last?.type === 'function_call_output') {
      // The tool decided what the patient hears ('… Say exactly: "<reply>"'), as for the cloud LLM.
      const output = parseToolOutput(last.output);
      const said = /Say exactly: "([^"]+)"/.exec(output)?.[1];
      this.#say(id, said ?? (/no one can take a transfer/i.test(output) ? NO_TRANSFER : NOT_UNDERSTOOD));
      return;
    }
    if (last?.type !== 'message' || last.role !== 'user') return;
    const words = last.textContent ?? '';
    const intent = matchIntent(words);
    if (intent === 'unclear' || !this.toolCtx?.hasTool(intent)) {
      const before = this.chatCtx.items.slice(0, -1).reverse().find((i) => i.type === 'message' && i.role === 'assistant');
      const cutOff = before?.type === 'message' && before.interrupted;
      this.#say(id, cutOff && this.#options.restart ? `Sorry. ${this.#options.restart}` : NOT_UNDERSTOOD);
      return;
    }
    const args = intent === 'request_reschedule' ? { preference: words.trim().slice(0, OUTCOME_DETAIL_MAX_CHARS.reschedulePreference) } : {};
    this.queue.put({
      id,
      delta: { role: 'assistant', toolCalls: [llm.FunctionCall.create({ callId: `intent_${id}`, name: intent, args: JSON.stringify(args) })] },
    });
  }

  #say(id: string, content: string): void {
    this.queue.put({ id, delta: { role: 'assistant', content } });
  }
}

/** The session hands the tool's return value over as JSON; older paths pass the string itself. */
function parseToolOutput(output: string): string {
  try {
    const parsed: unknown = JSON.parse(output);
    return typeof parsed === 'string' ? parsed : output;
  } catch {
    return output;
  }
}
