/**
 * What the agent says: the greeting (practice and callback number first — calling rules require
 * both), the keypad menu, the replies after each outcome, and the voicemail message. Plain
 * functions of the job metadata, so tests and the LLM's instructions use the same words.
 */
import { DateTime } from 'luxon';
import { CallOutcome, type AgentJobMetadata } from '../src/contracts';

/** Keypad choices, announced in the greeting; they work with no speech recognition at all. */
export const KEYPAD: Readonly<Record<string, CallOutcome>> = {
  '1': CallOutcome.CONFIRMED,
  '2': CallOutcome.CANCELLED,
  '3': CallOutcome.RESCHEDULE_REQUESTED,
  '0': CallOutcome.TRANSFERRED,
  '9': CallOutcome.OPTED_OUT,
};

/** A phone number read digit by digit, the way people say them ("3 1 2, 5 5 5, 0 1 0 0"). */
export function sayNumber(e164: string): string {
  const national = e164.replace(/^\+1/, '').replace(/\D/g, '');
  if (national.length === 10) return `${national.slice(0, 3).split('').join(' ')}, ${national.slice(3, 6).split('').join(' ')}, ${national.slice(6).split('').join(' ')}`;
  return national.split('').join(' ');
}

/** "Tuesday, December 1 at 9:30 AM", in the patient's zone. */
export function sayWhen(meta: Pick<AgentJobMetadata, 'appointmentStartLocal' | 'patientTimeZone'>): string {
  const at = DateTime.fromISO(meta.appointmentStartLocal, { setZone: true }).setZone(meta.patientTimeZone);
  return at.isValid ? at.toFormat("cccc, LLLL d 'at' h:mm a").replace(':00 ', ' ') : meta.appointmentStartLocal;
}

const menu = 'Press 1 to confirm, 2 to cancel, 3 to reschedule, or 0 to speak with our staff. To stop these calls, press 9.';

/**
 * The first words of every answered call, said at the answer while the agent still listens for who
 * answered: the practice, nothing about the patient (a machine or someone else may be listening).
 */
export function opening(meta: Pick<AgentJobMetadata, 'practiceName'>): string {
  // Short (about 2.5 s): a hello is answered, and a machine talked over, for no longer than it lasts.
  return `Hello, this is ${meta.practiceName}.`;
}

/**
 * What follows the opening once a person (or a silent line) answered: the callback number, the
 * appointment and the keypad menu. The patient's name comes after the number: a machine that
 * passed for a person at first is cut off within a second, before it.
 */
export function greetingBody(meta: AgentJobMetadata): string {
  const forWhom = meta.patientFirstName ? ` for ${meta.patientFirstName}` : '';
  return (
    `Our number is ${sayNumber(meta.practiceCallbackNumber)}. ` +
    `We're calling to confirm the appointment${forWhom} with ${meta.provider} on ${sayWhen(meta)}. ` +
    `Can you make it? ${menu}`
  );
}

/** The whole greeting: the opening, then the rest (cloud mode says it in one go). */
export function greeting(meta: AgentJobMetadata): string {
  return `${opening(meta)} ${greetingBody(meta)}`;
}

/** Re-prompt after silence or an answer the agent could not place (at most twice). */
export function reprompt(n: number): string {
  return n === 1 ? `Sorry, I didn't catch that. ${menu}` : `Can you make your appointment? ${menu}`;
}

/** Goodbye when the patient never answered the question: the workflow will call again. */
export const noAnswerGoodbye = "I'm sorry, I couldn't hear you. We'll try again later. Goodbye.";

/**
 * What the agent tells the patient once the workflow has acknowledged the outcome. Short: the
 * callback number was in the greeting, and the workflow hangs up 10 s after the outcome.
 */
export function replyFor(outcome: CallOutcome, meta: AgentJobMetadata): string {
  switch (outcome) {
    case CallOutcome.CONFIRMED:
      return `Thank you, you're confirmed for ${sayWhen(meta)}. Goodbye.`;
    case CallOutcome.CANCELLED:
      return `Okay, your appointment is cancelled. Goodbye.`;
    case CallOutcome.RESCHEDULE_REQUESTED:
      return `Thank you. Our front desk will call you to find a new time. Goodbye.`;
    case CallOutcome.OPTED_OUT:
      return `Understood. We won't call you with automated reminders again. Goodbye.`;
    case CallOutcome.WRONG_NUMBER:
      return `Sorry for the trouble. We'll update our records. Goodbye.`;
    case CallOutcome.TRANSFERRED:
      return `One moment, I'm connecting you with our front desk.`;
    default:
      return `Thank you. Goodbye.`;
  }
}

/** Said when the workflow has not acknowledged the patient's answer within a moment (the answer is kept). */
export const holdOn = 'Thank you. One moment while I note that.';

/** When the workflow no longer takes the outcome (it decided already, or closed): still polite, still recorded. */
export function lateReply(meta: AgentJobMetadata): string {
  return `Thank you, I've noted that for the office. Call us at ${sayNumber(meta.practiceCallbackNumber)} with any questions. Goodbye.`;
}

/**
 * The voicemail message: practice, reason, callback number and how to opt out — no health
 * details beyond the appointment time. About 25 s spoken, well under the 60 s limit.
 */
export function voicemailMessage(meta: AgentJobMetadata): string {
  return (
    `Hello, this is ${meta.practiceName} calling with an appointment reminder for ${sayWhen(meta)}. ` +
    `Please call us back at ${sayNumber(meta.practiceCallbackNumber)} to confirm. ` +
    `To stop these reminder calls, call that number and tell us, or press 9 when we call. Thank you, goodbye.`
  );
}

/** The LLM's instructions (cloud mode): the same script, and when to call which tool. */
export function instructions(meta: AgentJobMetadata): string {
  return [
    `You are the automated appointment assistant of ${meta.practiceName}, on an outbound phone call.`,
    `The appointment: with ${meta.provider} on ${sayWhen(meta)} (${meta.reason}). The practice's number is ${sayNumber(meta.practiceCallbackNumber)}.`,
    'You have already greeted the patient and asked whether they can make it. Keep every reply to one or two short sentences.',
    'Call exactly one tool as soon as the patient has made their wish clear:',
    '- confirm_appointment when they will come;',
    '- cancel_appointment when they want to cancel;',
    '- request_reschedule when they want another time, passing the days or times they said, in their words;',
    '- opt_out when they ask not to be called again;',
    '- wrong_number when the person is not the patient and does not know them;',
    '- transfer_to_staff when they ask for a person.',
    'Never give medical advice or discuss anything beyond this appointment. Never read out health details.',
    'If the answer is unclear, ask once more whether they can make it.',
  ].join('\n');
}
