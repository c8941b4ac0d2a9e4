/**
 * When the line is quiet enough to re-prompt: the agent is listening, the patient is not speaking,
 * and nothing the patient said is still being recognized. A re-prompt timed from the end of the
 * agent's question alone talks over an answer whose words are still on their way (a slow speech
 * recognizer on a loaded host takes seconds), and then says "Sorry, I didn't catch that" to an
 * answer it is about to act on.
 */
import { voice } from '@livekit/agents';

/**
 * How long words the patient spoke may take to come back as text before the agent stops waiting
 * for them, in ms. Also the session's `transcriptionTimeout` (the library reports speech that
 * produced no transcript), see {@link QuietWatch}.
 */
export const TRANSCRIPT_WAIT_MS = 15_000;

type Session = Pick<voice.AgentSession, 'on' | 'off' | 'agentState' | 'userState'>;

export class QuietWatch {
  readonly #session: Session;
  /** The patient's speech ended and its transcript has not come (nor been given up on). */
  #pendingTimer?: ReturnType<typeof setTimeout>;
  readonly #listeners = new Set<() => void>();
  readonly #off: (() => void)[] = [];

  constructor(session: Session) {
    this.#session = session;
    const on = <E extends voice.AgentSessionEventTypes>(event: E, f: (ev: never) => void) => {
      session.on(event, f as never);
      this.#off.push(() => session.off(event, f as never));
    };
    on(voice.AgentSessionEventTypes.UserStateChanged, (ev: voice.UserStateChangedEvent) => {
      if (ev.oldState === 'speaking' && ev.newState !== 'speaking') this.#setPending(true);
      this.#changed();
    });
    on(voice.AgentSessionEventTypes.UserInputTranscribed, (ev: voice.UserInputTranscribedEvent) => {
      // Only words end the wait: the library's own timeout below covers speech that became none.
      if (ev.isFinal && ev.transcript.trim() !== '') this.#setPending(false);
    });
    on(voice.AgentSessionEventTypes.UserTranscriptionTimeout, () => this.#setPending(false));
    on(voice.AgentSessionEventTypes.AgentStateChanged, () => this.#changed());
  }

  /** True while nobody speaks, the agent is not preparing a reply, and no answer is being recognized. */
  get quiet(): boolean {
    const agentState = this.#session.agentState;
    return (agentState === 'listening' || agentState === 'idle') && this.#session.userState !== 'speaking' && this.#pendingTimer === undefined;
  }

  /**
   * Resolves after `ms` of unbroken quiet. Anything that breaks the quiet (the patient speaks, the
   * agent replies) starts the count again once it is over. `signal` stops the wait (never resolves).
   */
  quietFor(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = () => {
        if (signal?.aborted) return stop();
        if (!this.quiet) {
          clearTimeout(timer);
          timer = undefined;
        } else if (timer === undefined) {
          timer = setTimeout(() => {
            stop();
            resolve();
          }, ms);
        }
      };
      const stop = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        signal?.removeEventListener('abort', stop);
      };
      this.#listeners.add(check);
      signal?.addEventListener('abort', stop, { once: true });
      check();
    });
  }

  close(): void {
    for (const off of this.#off.splice(0)) off();
    this.#setPending(false);
    this.#listeners.clear();
  }

  #setPending(pending: boolean): void {
    clearTimeout(this.#pendingTimer);
    this.#pendingTimer = undefined;
    // Bounded here as well: a recognizer that neither answers nor times out must not silence the
    // re-prompts (the call would then run to its longest duration with nobody speaking).
    if (pending) this.#pendingTimer = setTimeout(() => this.#setPending(false), TRANSCRIPT_WAIT_MS + 1_000);
    this.#changed();
  }

  #changed(): void {
    for (const f of [...this.#listeners]) f();
  }
}
