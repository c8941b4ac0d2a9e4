/**
 * Conversations with the agent through `voice.testing` and `FakeLLM` (no network, no room): each
 * asserts the tool calls the model makes and that a real confirmation workflow on the Temporal dev
 * server received the `outcome` Update and ended with the right outcome. The phone is scripted to
 * hold the line, so each workflow waits for the agent exactly as on a real call.
 */
import { initializeLogger, voice } from '@livekit/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationAgent } from '../../agent/confirmation-agent';
import { temporalReporter } from '../../agent/reporter';
import { lateReply, replyFor } from '../../agent/script';
import { answeredCall as answeredCallOf, startAgentWorkflowSystem, type AgentWorkflowSystem } from '../helpers/agent-workflow';
import { CallOutcome, ConsentState, Phase, type AgentJobMetadata } from '../../src/contracts';

const { FakeLLM } = voice.testing;
const QUEUE = 'agent-conversations';
let system: AgentWorkflowSystem;
let store: AgentWorkflowSystem['store'];
let client: AgentWorkflowSystem['client'];
let api: AgentWorkflowSystem['api'];

beforeAll(async () => {
  initializeLogger({ pretty: false, level: 'warn' });
  system = await startAgentWorkflowSystem(QUEUE);
  ({ store, client, api } = system);
});

afterAll(async () => {
  await system?.stop();
});

let n = 0;
/** Starts a confirmation whose phone answers and holds the line; resolves when the call is up. */
const answeredCall = () => {
  n += 1;
  // Fictional 555-01xx numbers, apart from the simulator's 0101–0119.
  return answeredCallOf(system, `+121255501${50 + n}`, `conv-${n}-${Date.now().toString(36)}`);
};

/** An agent session with the model's answers scripted, reporting to the real workflow. */
async function session(meta: AgentJobMetadata, responses: ConstructorParameters<typeof FakeLLM>[0], transfer?: () => Promise<void>) {
  const agent = new ConfirmationAgent({ meta, reporter: temporalReporter({ client, workflowId: meta.workflowId, taskQueue: QUEUE }), transfer });
  const s = new voice.AgentSession({ llm: new FakeLLM(responses) });
  await s.start({ agent });
  return { s, agent };
}

/** The tool's output the model sees, as FakeLLM keys it (JSON of the returned string). */
const toolOutput = (outcome: CallOutcome, meta: AgentJobMetadata, accepted = true) =>
  JSON.stringify(`${accepted ? `recorded ${outcome}` : `noted ${outcome} for the office`}. Say exactly: "${accepted ? replyFor(outcome, meta) : lateReply(meta)}"`);

async function conversation(userInput: string, toolName: string, args: Record<string, unknown>, outcome: CallOutcome, transfer?: () => Promise<void>) {
  const { workflowId, request, meta, hangUp } = await answeredCall();
  const { s } = await session(
    meta,
    [
      { input: userInput, toolCalls: [{ name: toolName, args }] },
      { input: toolOutput(outcome, meta), content: replyFor(outcome, meta) },
    ],
    transfer,
  );
  const result = await s.run({ userInput }).wait();
  result.expect.nextEvent().isFunctionCall({ name: toolName, args });
  result.expect.nextEvent().isFunctionCallOutput();
  result.expect.nextEvent().isMessage({ role: 'assistant' });
  result.expect.noMoreEvents();
  await s.close();
  hangUp(); // after the goodbye, as the agent does
  const final = await api.result(workflowId);
  return { final, request, workflowId, meta };
}

describe('the agent in conversation (voice.testing, FakeLLM) against a real workflow', () => {
  it('confirm', async () => {
    const { final, request } = await conversation("Yes, I'll be there.", 'confirm_appointment', {}, CallOutcome.CONFIRMED);
    expect(final.outcome).toBe(CallOutcome.CONFIRMED);
    expect(await store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
  });

  it('cancel', async () => {
    const { final } = await conversation('I need to cancel, sorry.', 'cancel_appointment', {}, CallOutcome.CANCELLED);
    expect(final.outcome).toBe(CallOutcome.CANCELLED);
  });

  it('reschedule, with the preference as the patient said it', async () => {
    const preference = 'Tuesday or Wednesday mornings';
    const { final, request } = await conversation('Can we move it? Tuesday or Wednesday mornings work.', 'request_reschedule', { preference }, CallOutcome.RESCHEDULE_REQUESTED);
    expect(final.outcome).toBe(CallOutcome.RESCHEDULE_REQUESTED);
    expect((await store.getAppointment(request.practiceId, request.appointmentId))?.outcomeDetail).toMatchObject({ reschedulePreference: preference });
  });

  it('opt out: the number goes on the do-not-call list', async () => {
    const { final, request } = await conversation('Please stop calling me.', 'opt_out', {}, CallOutcome.OPTED_OUT);
    expect(final.outcome).toBe(CallOutcome.OPTED_OUT);
    expect(await store.consentState(request.practiceId, request.phone)).toBe(ConsentState.DO_NOT_CALL);
  });

  it('wrong number', async () => {
    const { final } = await conversation("There's no Jordan here.", 'wrong_number', {}, CallOutcome.WRONG_NUMBER);
    expect(final.outcome).toBe(CallOutcome.WRONG_NUMBER);
  });

  it('asks for a person: TRANSFERRED (the SIP transfer itself is in the full-stack test)', async () => {
    const { final } = await conversation('Can I talk to someone at the front desk?', 'transfer_to_staff', {}, CallOutcome.TRANSFERRED, async () => undefined);
    expect(final.outcome).toBe(CallOutcome.TRANSFERRED);
  });

  it('asks for a person where no transfer number is configured: no outcome, the agent offers a call back', async () => {
    const { workflowId, meta, hangUp } = await answeredCall();
    const { s, agent } = await session(meta, [{ input: 'Can I talk to a person?', toolCalls: [{ name: 'transfer_to_staff', args: {} }] }]);
    const result = await s.run({ userInput: 'Can I talk to a person?' }).wait();
    result.expect.nextEvent().isFunctionCall({ name: 'transfer_to_staff' });
    expect(result.expect.nextEvent().isFunctionCallOutput().event().item.output).toMatch(/call them back/);
    expect(agent.settled).toBeUndefined();
    await s.close();
    expect((await api.getStatus(workflowId)).phase).toBe(Phase.CALLING);
    hangUp();
  });

  it('asks for a person where a warm transfer is configured: heard at once, reported only after the front desk decides', async () => {
    const { workflowId, meta, hangUp } = await answeredCall();
    const agent = new ConfirmationAgent({ meta, reporter: temporalReporter({ client, workflowId, taskQueue: QUEUE }), warmTransfer: true });
    const s = new voice.AgentSession({ llm: new FakeLLM([{ input: 'Can I talk to the front desk?', toolCalls: [{ name: 'transfer_to_staff', args: {} }] }]) });
    await s.start({ agent });
    const result = await s.run({ userInput: 'Can I talk to the front desk?' }).wait();
    result.expect.nextEvent().isFunctionCall({ name: 'transfer_to_staff' });
    expect(result.expect.nextEvent().isFunctionCallOutput().event().item.output).toMatch(/stay on the line/);
    expect(agent.heard).toMatchObject({ outcome: CallOutcome.TRANSFERRED });
    expect(agent.settled).toBeUndefined(); // the call's warm transfer reports it (agent/warm-transfer.ts)
    await s.close();
    expect((await api.getStatus(workflowId)).phase).toBe(Phase.CALLING);
    // Staff took the call, and it is over: TRANSFERRED.
    expect(await agent.settle(CallOutcome.TRANSFERRED, { note: 'warm transfer: front desk took the call' })).toMatchObject({ accepted: true });
    hangUp();
    expect((await api.result(workflowId)).outcome).toBe(CallOutcome.TRANSFERRED);
  });

  it('an unclear answer gets one more question, then the confirmation', async () => {
    const { workflowId, meta, hangUp } = await answeredCall();
    const { s } = await session(meta, [
      { input: 'Hmm, what was that?', content: 'This is Bright Smiles Dental. Can you make your appointment on Thursday?' },
      { input: 'Oh, yes, I can.', toolCalls: [{ name: 'confirm_appointment', args: {} }] },
      { input: toolOutput(CallOutcome.CONFIRMED, meta), content: replyFor(CallOutcome.CONFIRMED, meta) },
    ]);
    const first = await s.run({ userInput: 'Hmm, what was that?' }).wait();
    first.expect.nextEvent().isMessage({ role: 'assistant' });
    first.expect.noMoreEvents();
    expect((await api.getStatus(workflowId)).phase).toBe(Phase.CALLING); // nothing reported yet
    const second = await s.run({ userInput: 'Oh, yes, I can.' }).wait();
    second.expect.nextEvent().isFunctionCall({ name: 'confirm_appointment' });
    second.expect.nextEvent().isFunctionCallOutput();
    second.expect.nextEvent().isMessage({ role: 'assistant' });
    await s.close();
    hangUp();
    expect((await api.result(workflowId)).outcome).toBe(CallOutcome.CONFIRMED);
  });

  it('the workflow already decided: the Update is rejected, the patient hears a sensible reply, and the outcome is audited', async () => {
    const { workflowId, meta, hangUp } = await answeredCall();
    // The patient confirms on the keypad first (the same path as the tool), then says "cancel".
    const keypad = new ConfirmationAgent({ meta, reporter: temporalReporter({ client, workflowId, taskQueue: QUEUE }) });
    expect((await keypad.settle(CallOutcome.CONFIRMED)).accepted).toBe(true);
    const { s, agent } = await session(meta, [
      { input: 'Actually, cancel it.', toolCalls: [{ name: 'cancel_appointment', args: {} }] },
      { input: toolOutput(CallOutcome.CANCELLED, meta, false), content: lateReply(meta) },
    ]);
    const result = await s.run({ userInput: 'Actually, cancel it.' }).wait();
    result.expect.nextEvent().isFunctionCall({ name: 'cancel_appointment' });
    result.expect.nextEvent().isFunctionCallOutput();
    result.expect.nextEvent().isMessage({ role: 'assistant' });
    await s.close();
    hangUp();
    expect(agent.settled).toMatchObject({ outcome: CallOutcome.CANCELLED, accepted: false, reply: lateReply(meta) });
    expect((await api.result(workflowId)).outcome).toBe(CallOutcome.CONFIRMED);
    // Never dropped: the late outcome is in the audit log (written by the worker's activity).
    let late;
    for (let i = 0; i < 100 && !late; i += 1) {
      late = (await store.listAudit({ workflowId })).find((r) => r.decision === 'LATE_OUTCOME');
      if (!late) await new Promise((r) => setTimeout(r, 100));
    }
    expect(late).toMatchObject({ outcome: CallOutcome.CANCELLED, attempt: 1 });
    expect(late!.detail).toMatchObject({ reason: expect.stringMatching(/decided|already/i) });

    // After the workflow closed: rejected the same way, audited once per outcome.
    const closed = new ConfirmationAgent({ meta, reporter: temporalReporter({ client, workflowId, taskQueue: QUEUE }) });
    expect(await closed.settle(CallOutcome.RESCHEDULE_REQUESTED, { reschedulePreference: 'Friday' })).toMatchObject({ accepted: false });
    for (let i = 0; i < 100; i += 1) {
      if ((await store.listAudit({ workflowId })).some((r) => r.decision === 'LATE_OUTCOME' && r.outcome === CallOutcome.RESCHEDULE_REQUESTED)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lates = (await store.listAudit({ workflowId })).filter((r) => r.decision === 'LATE_OUTCOME');
    expect(lates.map((r) => r.outcome)).toEqual([CallOutcome.CANCELLED, CallOutcome.RESCHEDULE_REQUESTED]);
  });
});
