/** Shared test data (fictional: 555-01xx numbers, made-up practice). */
import type { DialInput } from '../../src/contracts';

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
