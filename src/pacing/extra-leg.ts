/**
 * A leg a call places besides its own over the same trunk — the warm transfer's call to the front
 * desk, placed by the agent — is a call like any other to the trunk: it holds a channel while it is
 * up and its INVITE takes a calls-per-second slot. Without this, a transfer could put one call more
 * than the channels on the trunk, or one INVITE more than the limit into a second.
 *
 * The leg's holder is the attempt's own with `/staff` after the workflow id ({@link extraLegHolder}),
 * so it never collides with the attempt's channel; its deadline is now (a patient is on hold: it goes
 * before waiting confirmations of its practice), and it counts against the trunk and the practice,
 * not a campaign. It needs no agent of its own (the call's agent places it): the grant tick gives it
 * a free channel even while the agents' capacity holds new calls back, and it is not counted as an
 * agent's call.
 */
import type { ChannelGate } from './broker';
import { extraLegHolder, extraLegOf, practiceOfWorkflow } from './holder';

/** A channel held for an extra leg: release it when the leg is down (idempotent). */
export interface ExtraLeg {
  readonly holder: string;
  release(): Promise<void>;
}

export interface ExtraLegRequest {
  /** The confirmation whose call the leg belongs to, and its attempt. */
  workflowId: string;
  attempt: number;
  /** Default: the practice in the workflow id. */
  practiceId?: string;
  /** Give up when no channel is free within this long, in ms. */
  waitMs: number;
  signal?: AbortSignal;
}

/**
 * Waits for a channel and then a call slot for an extra leg; resolves undefined when no channel
 * became free within `waitMs`. The lease is renewed while held; `release()` ends it.
 */
export async function takeExtraLeg(gate: ChannelGate, request: ExtraLegRequest): Promise<ExtraLeg | undefined> {
  const workflowId = extraLegOf(request.workflowId);
  const holder = extraLegHolder(request.workflowId, request.attempt);
  const grant = await gate.acquire(
    {
      workflowId,
      attempt: request.attempt,
      practiceId: request.practiceId ?? practiceOfWorkflow(request.workflowId) ?? 'unknown',
      deadline: new Date(),
      giveUpAt: new Date(Date.now() + request.waitMs),
    },
    request.signal,
  );
  if (!grant.granted) return undefined;
  const unhold = gate.hold(holder);
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    unhold();
    await gate.release(holder);
  };
  try {
    await gate.waitForCallSlot(holder, request.signal);
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
  return { holder, release };
}
