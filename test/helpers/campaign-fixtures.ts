/**
 * Campaign rows for workflow tests: a campaign and its contacts written to the real database, as an
 * import leaves them (the import itself is tested in test/campaigns).
 */
import type { DateTime } from 'luxon';
import { campaignWorkflowId, confirmationWorkflowId, type CallLimits } from '../../src/contracts';
import type { Queryable } from '../../src/store/sql';

export interface FixtureContact {
  appointmentId: string;
  phone: string;
  start: DateTime;
  name?: string;
}

/** Writes the campaign row (RUNNING) and its contacts (QUEUED). */
export async function seedCampaign(
  sql: Queryable,
  options: { practiceId?: string; campaignId: string; limits?: CallLimits; contacts: FixtureContact[]; policy?: Record<string, unknown> },
): Promise<{ practiceId: string; campaignId: string; workflowId: string }> {
  const practiceId = options.practiceId ?? 'bright-smiles';
  const limits = options.limits ?? { channels: 3, callsPerSecond: 1 };
  await sql.query(
    `INSERT INTO campaigns (practice_id, campaign_id, workflow_id, practice_name, practice_callback_number, max_channels, max_calls_per_second, policy)
     VALUES ($1, $2, $3, 'Bright Smiles Dental', '+13125550100', $4, $5, $6) ON CONFLICT DO NOTHING`,
    [practiceId, options.campaignId, campaignWorkflowId(practiceId, options.campaignId), limits.channels, limits.callsPerSecond, options.policy ? JSON.stringify(options.policy) : null],
  );
  await addContacts(sql, practiceId, options.campaignId, options.contacts);
  return { practiceId, campaignId: options.campaignId, workflowId: campaignWorkflowId(practiceId, options.campaignId) };
}

/** Queues more contacts in a campaign. */
export async function addContacts(sql: Queryable, practiceId: string, campaignId: string, contacts: FixtureContact[]): Promise<void> {
  for (const [i, c] of contacts.entries()) {
    await sql.query(
      `INSERT INTO campaign_contacts (practice_id, campaign_id, appointment_id, patient_id, patient_name, phone, patient_time_zone,
         appointment_start, starts_at, provider, reason, source_line, workflow_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'Dr. Rivera', 'cleaning', $10, $11) ON CONFLICT DO NOTHING`,
      [
        practiceId,
        campaignId,
        c.appointmentId,
        `pat-${c.appointmentId}`,
        c.name ?? 'Jordan Sample',
        c.phone,
        c.start.zoneName,
        c.start.toISO({ suppressMilliseconds: true }),
        c.start.toJSDate(),
        i + 2,
        confirmationWorkflowId(practiceId, c.appointmentId),
      ],
    );
  }
}
