/** Shared test data (fictional: 555-01xx numbers, made-up practice). */
import { DateTime } from 'luxon';
import type { CallPolicy, ConfirmationRequest, DialInput } from '../../src/contracts';
import { zoneInOfficeHours } from '../../src/dev/office-hours';

/** A dial request for `roomName` (workflow `confirm-p1-A1`, attempt 1) with sensible call settings. */
export function sampleDialInput(roomName: string, overrides: Partial<DialInput> = {}): DialInput {
  const workflowId = overrides.workflowId ?? 'confirm-p1-A1';
  const attempt = overrides.attempt ?? 1;
  return {
    workflowId,
    attempt,
    roomName,
    phone: '+12125550123',
    ringingTimeoutSeconds: 30,
    maxCallDurationSeconds: 300,
    outcomeMarginSeconds: 30,
    hangupGraceSeconds: 10,
    agentMetadata: {
      workflowId,
      attempt,
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      appointmentStartLocal: '2026-12-01T10:30:00-06:00',
      patientTimeZone: 'America/Chicago',
      reason: 'cleaning',
      patientFirstName: 'Jordan',
      voicemailAllowed: true,
    },
    ...overrides,
  };
}

/**
 * A confirmation request for the end-to-end suites (local system, patient zone in office hours now,
 * appointment at 11:00 in two days): `tag` makes the ids unique per suite and call.
 */
export function e2eRequest(tag: string, phone: string, policy: Partial<CallPolicy> = {}): ConfirmationRequest {
  const zone = zoneInOfficeHours();
  return {
    appointmentId: `${tag}-${Date.now().toString(36)}`,
    patientId: `pat-${tag}`,
    patientName: 'Jordan Sample',
    phone,
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11, minute: 0, second: 0, millisecond: 0 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    policy: { maxAttempts: 1, ...policy },
  };
}

/**
 * The `i`-th row of an e2e campaign (fictional patient; the appointment two days ahead at 11:<i>
 * in `zone`, so rows sort by `i`), as `CampaignClient.start` takes it.
 */
export function e2eCampaignRow(appointmentId: string, phone: string, i: number, zone: string): Record<string, string> {
  return {
    appointmentId,
    patientId: `pat-${i}`,
    patientName: 'Jordan Sample',
    phone,
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11, minute: i }).toISO({ suppressMilliseconds: true })!,
    provider: 'Dr. Rivera',
    reason: 'cleaning',
  };
}
