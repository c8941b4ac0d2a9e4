/**
 * How long the project's helpers wait for a server they start (Temporal, the test server,
 * livekit-server, Redis, PostgreSQL, the agent worker) before they give up. A healthy server
 * answers in seconds and the wait ends then; the deadline only bounds a server that never comes up.
 * Generous by default, because CI machines are shared (a load of 12 on 2 cores was seen).
 */

/** Default wait for a server to answer, in seconds. */
export const DEFAULT_SERVER_START_SECONDS = 240;

/** The wait for a server to answer, in ms: `CALL_CAMPAIGNS_SERVER_START_SECONDS` or the default. */
export function serverStartDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CALL_CAMPAIGNS_SERVER_START_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_SERVER_START_SECONDS * 1000;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`CALL_CAMPAIGNS_SERVER_START_SECONDS: must be a positive number of seconds`);
  }
  return seconds * 1000;
}
