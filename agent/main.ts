/**
 * The agent worker: registers with LiveKit under AGENT_NAME (explicit dispatch: the dial activity
 * dispatches it to each call's room) and runs each call in a job process (agent/entry.ts).
 *
 *   npm run agent        (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, PAYLOAD_ENCRYPTION_KEY, …)
 */
import { cli, ServerOptions } from '@livekit/agents';
import { RoomServiceClient } from 'livekit-server-sdk';
import { fileURLToPath } from 'node:url';
import { exitWithError, liveKitError } from '../src/errors';
import { loadAgentConfig, type AgentConfig } from './config';

let config: AgentConfig;
try {
  config = loadAgentConfig();
} catch (err) {
  exitWithError('agent', err); // a ConfigError names every bad variable
}
// The library retries a refused key or secret forever (a 401 warning every few seconds): check them
// once here and stop, naming the settings. An unreachable server is left to the library's retries.
try {
  await new RoomServiceClient(config.livekit.url.replace(/^ws/, 'http'), config.livekit.apiKey, config.livekit.apiSecret, { requestTimeout: 10 }).listRooms(['-']);
} catch (err) {
  const explained = liveKitError(err, config.livekit.url);
  if (/LIVEKIT_API_KEY/.test(explained.message)) exitWithError('agent', explained);
}
process.stdout.write(
  config.mode === 'offline'
    ? `agent: offline mode (keypad input, espeak-ng speech, Silero voice activity); agent name ${config.agentName}\n`
    : `agent: cloud mode (STT ${config.models!.stt}, LLM ${config.models!.llm}, TTS ${config.models!.tts}); agent name ${config.agentName}\n`,
);
// The library's CLI reads the command (`start`) from argv; `npm run agent` passes it.
cli.runApp(
  new ServerOptions({
    agent: fileURLToPath(new URL('./entry.ts', import.meta.url)),
    agentName: config.agentName,
    wsURL: config.livekit.url,
    apiKey: config.livekit.apiKey,
    apiSecret: config.livekit.apiSecret,
    numIdleProcesses: config.idleProcesses,
    initializeProcessTimeout: config.processInitSeconds * 1000,
    // Load = share of the call slots in use. The library's default (this machine's CPU) stops
    // dispatch whenever the host is busy — with several calls starting at once, livekit-server then
    // dispatches no agent to a new call's room, and that call is never answered by anyone.
    loadFunc: async (server) => Math.min(server.activeJobs.length / config.maxCalls, 1),
    loadThreshold: 1,
    // A job whose patient answered waits for the workflow's acknowledgement (or the late-outcome
    // record) before it exits: give it the reporter's whole retry budget (2 × 120 s) and a margin.
    shutdownProcessTimeout: 5 * 60_000,
    // A port of its own for the health endpoint, so several workers (tests) can share a machine.
    port: Number(process.env.AGENT_HTTP_PORT ?? 0),
  }),
);
