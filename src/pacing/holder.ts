/**
 * Who holds a channel: one attempt of one confirmation. `<workflow id>#a<attempt>` — `#` never
 * occurs in a workflow id of ours, so the pair is recoverable; the id carries no health data.
 */

/** Holder of the channel of attempt `attempt` of `workflowId`. */
export function channelHolder(workflowId: string, attempt: number): string {
  return `${workflowId}#a${attempt}`;
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
