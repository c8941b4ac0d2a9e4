/**
 * A campaign's progress in one line: the Web UI's current details of the campaign workflow and the
 * CLI's piped status. Deterministic (the workflow bundle imports it). No health data.
 */
import { CampaignState, type CampaignProgress } from '../contracts';

/** One line of progress, for the Web UI's current details and piped CLI output. No health data. */
export function progressLine(p: CampaignProgress): string {
  const done = (p.byPhase.DONE ?? 0) + p.byStatus.SKIPPED + p.byStatus.CANCELLED;
  const outcomes = Object.entries(p.byOutcome)
    .sort((a, b) => b[1] - a[1])
    .map(([o, n]) => `${o} ${n}`)
    .join(', ');
  const parts = [
    `${p.state}`,
    `${done}/${p.total} done`,
    `${p.byStatus.QUEUED} queued, ${p.outstanding} running, ${p.callsInProgress} calls up (limit ${p.limits.channels} ch, ${p.limits.callsPerSecond}/s)`,
    `${p.callsPerMinute} calls/min`,
  ];
  if (p.nextCallAt) parts.push(`next call ${p.nextCallAt}`);
  if (p.estimatedFinishAt && p.state !== CampaignState.COMPLETED) parts.push(`est. finish ${p.estimatedFinishAt}`);
  if (outcomes) parts.push(outcomes);
  return parts.join(' · ');
}
