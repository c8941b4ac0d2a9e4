/**
 * Scripted phones behind the production `Telephony` port, for workflow tests and the embedded demo
 * until the LiveKit path and the phone-network simulator take over. Each dial to a number takes the
 * next script in its queue. An answered script may play the voice agent's part: it sends the
 * `outcome` Update through the real Temporal client, exactly as the agent does.
 */
import type { Client } from '@temporalio/client';
import {
  CallCheckState,
  DialFailureType,
  outcomeUpdate,
  SIP_PARTICIPANT_IDENTITY,
  type CallCheckResult,
  type CallOutcome,
  type DialInput,
  type DialResult,
  type OutcomeDetail,
} from '../contracts';
import { DialError, type Telephony } from '../ports';

/** What the phone (and the agent, once answered) does for one dial. */
export type PhoneScript =
  | {
      kind: 'answer';
      /** The verdict the agent reports (then it says goodbye and hangs up); omitted: the agent stays silent. */
      agentReports?: CallOutcome;
      detail?: OutcomeDetail;
      /** With no verdict, the patient hangs up after this long (default 100 ms); tests that play the agent hold the line. */
      hangsUpAfterMs?: number;
    }
  | { kind: 'fail'; type: DialFailureType; sipStatusCode?: number; sipStatus?: string }
  /** Rings (`sip.callStatus` `ringing`) for `forMs`, then NO_ANSWER; deleting the room ends the ringing at once. */
  | { kind: 'ring'; forMs: number }
  /** The dial's response is lost after the call was placed (answered, or not): the workflow must look, not redial. */
  | { kind: 'lost'; answered: boolean; agentReports?: CallOutcome };

/** SIP responses of the common failures, as livekit-sip reports them. */
export const PHONES = {
  busy: { kind: 'fail', type: DialFailureType.BUSY, sipStatusCode: 486, sipStatus: 'Busy Here' },
  noAnswer: { kind: 'fail', type: DialFailureType.NO_ANSWER, sipStatusCode: 408, sipStatus: 'Request Timeout' },
  declined: { kind: 'fail', type: DialFailureType.DECLINED, sipStatusCode: 603, sipStatus: 'Decline' },
  invalid: { kind: 'fail', type: DialFailureType.INVALID_NUMBER, sipStatusCode: 404, sipStatus: 'Not Found' },
  trunkError: { kind: 'fail', type: DialFailureType.TRUNK_ERROR, sipStatusCode: 503, sipStatus: 'Service Unavailable' },
} as const satisfies Record<string, PhoneScript>;

/** One dial as the phone network saw it: what was asked, and which script answered. */
export interface ScriptedDial extends DialInput {
  script: PhoneScript | undefined;
}

/** The scripted phone network. */
export class ScriptedTelephony implements Telephony {
  readonly dials: ScriptedDial[] = [];
  readonly hangUps: string[] = [];
  private readonly scripts = new Map<string, PhoneScript[]>();
  private readonly rooms = new Map<string, string>();

  /**
   * @param client used to play the agent's part (the `outcome` Update); omit when tests send it themselves.
   * @param options.reportAfterAnswerMs report this long after the dial returned (the real agent's order)
   *   instead of before it returns; only for real-time servers, never under time skipping.
   */
  constructor(
    private readonly client?: Client,
    private readonly options: { reportAfterAnswerMs?: number } = {},
  ) {}

  /** Queues what the phone at `phone` does on its next dials, in order. */
  script(phone: string, ...scripts: PhoneScript[]): this {
    this.scripts.set(phone, [...(this.scripts.get(phone) ?? []), ...scripts]);
    return this;
  }

  /** Dials placed to `phone`. */
  dialsTo(phone: string): ScriptedDial[] {
    return this.dials.filter((d) => d.phone === phone);
  }

  async dial(input: DialInput): Promise<DialResult> {
    const script = this.scripts.get(input.phone)?.shift();
    const { roomName } = input;
    this.dials.push({ ...input, script });
    if (script === undefined) throw new DialError(DialFailureType.NO_ANSWER, 'no script: the phone rings out', 408, 'Request Timeout');
    if (script.kind === 'fail') {
      throw new DialError(script.type, `SIP call failed: ${script.sipStatusCode ?? ''} ${script.sipStatus ?? ''}`.trim(), script.sipStatusCode, script.sipStatus);
    }
    if (script.kind === 'ring') {
      this.rooms.set(roomName, 'ringing');
      const until = Date.now() + script.forMs;
      while (Date.now() < until && this.rooms.get(roomName) === 'ringing') await new Promise((r) => setTimeout(r, 10));
      const deleted = !this.rooms.has(roomName);
      this.rooms.delete(roomName);
      if (deleted) throw new DialError(DialFailureType.UNKNOWN, 'the room was deleted while the phone rang');
      throw new DialError(DialFailureType.NO_ANSWER, 'sip request timed out', 408, 'Request Timeout');
    }
    if (script.kind === 'lost') {
      if (script.answered) {
        this.rooms.set(roomName, 'active');
        await this.playAgent(input, script.agentReports);
      }
      throw new Error('socket hang up');
    }
    this.rooms.set(roomName, 'active');
    if (script.agentReports === undefined) {
      setTimeout(() => this.endCall(roomName), script.hangsUpAfterMs ?? 100);
    } else if (this.options.reportAfterAnswerMs !== undefined) {
      const report = () => this.playAgent(input, script.agentReports, script.detail);
      setTimeout(() => void report().catch(() => undefined), this.options.reportAfterAnswerMs);
    } else {
      // By default the stand-in reports before the dial returns, which keeps time-skipping tests
      // free of races (the workflow accepts either order).
      await this.playAgent(input, script.agentReports, script.detail);
    }
    return { answered: true, participantIdentity: SIP_PARTICIPANT_IDENTITY, sipCallId: `SCL_${roomName}`, answeredAt: new Date().toISOString() };
  }

  async checkCall(roomName: string): Promise<CallCheckResult> {
    const callStatus = this.rooms.get(roomName);
    // A call that was answered and has since ended still counts as answered.
    const answered = callStatus === 'active' || callStatus === 'hangup';
    return { state: answered ? CallCheckState.ANSWERED : CallCheckState.NOT_CONNECTED, callStatus };
  }

  /** The far end hangs up (the line of an answered call goes down). */
  endCall(roomName: string): void {
    if (this.rooms.get(roomName) === 'active') this.rooms.set(roomName, 'hangup');
  }

  async hangUp(roomName: string): Promise<void> {
    this.rooms.delete(roomName);
    this.hangUps.push(roomName);
  }

  private async playAgent(input: DialInput, outcome: CallOutcome | undefined, detail?: OutcomeDetail): Promise<void> {
    if (outcome === undefined || this.client === undefined) return;
    await this.client.workflow.getHandle(input.workflowId).executeUpdate(outcomeUpdate, {
      args: [{ attempt: input.attempt, outcome, detail }],
    });
    // The agent says goodbye and ends the call once its verdict is acknowledged.
    this.rooms.set(input.roomName, 'hangup');
  }
}
