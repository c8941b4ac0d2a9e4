/**
 * Who holds a channel: one attempt of one confirmation. `<workflow id>#a<attempt>` — `#` never
 * occurs in a workflow id of ours, so the pair is recoverable; the id carries no health data.
 */

/** Holder of the channel of attempt `attempt` of `workflowId`. */
export function channelHolder(workflowId: string, attempt: number): string {
  return `${workflowId}#a${attempt}`;
}

/**
 * Holder of an extra leg of an attempt's call (the warm transfer's call to the front desk:
 * ./extra-leg.ts): it needs a channel of the trunk, but no agent of its own — the call's agent places it.
 * The grant tick (database function `grant_tick`) knows these holders by their `/staff#a<n>` ending.
 */
export function extraLegHolder(workflowId: string, attempt: number): string {
  return channelHolder(extraLegOf(workflowId), attempt);
}

/** The id an extra leg of `workflowId`'s call asks the gate under (its holder is this id's). */
export function extraLegOf(workflowId: string): string {
  return `${workflowId}/staff`;
}

/**
 * The holder of an attempt's room (`attemptRoomName`: `<workflow id>-a<attempt>`), or undefined for
 * a room not named that way (tests' ad-hoc rooms).
 */
export function holderOfRoom(roomName: string): string | undefined {
  const m = /^(.+)-a(\d+)$/.exec(roomName);
  return m ? channelHolder(m[1]!, Number(m[2])) : undefined;
}

/** The practice of a confirmation workflow id (`confirm:<practice>:<appointment>`), when it is one. */
export function practiceOfWorkflow(workflowId: string): string | undefined {
  const parts = workflowId.split(':');
  return parts.length === 3 && parts[0] === 'confirm' ? parts[1] : undefined;
}
