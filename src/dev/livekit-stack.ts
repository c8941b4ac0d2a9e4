/**
 * The local LiveKit stack for tests and the demo: Redis and livekit-server on loopback, on free
 * ports (never a developer's own 6379/7880), with their own API key and secret. livekit-server
 * reaches its SIP service over this Redis; the phone-network simulator registers there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIPTransport } from '@livekit/protocol';
import { SipClient } from 'livekit-server-sdk';
import { freePort } from './temporal-dev-server';
import { resolveTool } from './tools';
import { serverStartDeadlineMs } from './deadlines';

export interface LiveKitStack {
  /** `ws://127.0.0.1:<port>` */
  url: string;
  apiKey: string;
  apiSecret: string;
  /** `127.0.0.1:<port>` of the stack's Redis. */
  redisAddress: string;
  /** The phone-network simulator's call log (one JSON line per INVITE, when the call is over), when it runs. */
  callLogFile?: string;
  /** Where the simulator records what each answered phone heard (`<room>-<sipCallId>.ogg`). */
  recordDir?: string;
  stop(): Promise<void>;
}

/** One INVITE as the simulated phone network saw it (tools/phone-sim, written when the call is over). */
export interface CallLogLine {
  /** When the INVITE arrived (RFC 3339). */
  time: string;
  trunk: string;
  /** Caller ID sent. */
  from: string;
  /** Number dialed. */
  to: string;
  room: string;
  ringingTimeoutSeconds: number;
  maxCallDurationSeconds: number;
  /** answered | no-answer | busy | unavailable | decline | notfound | server-error | error */
  outcome: string;
  /** How the call ended: a SIP response ("486 Busy Here"), "ringing timeout", "room deleted", "phone hung up", "max call duration"… */
  ended: string;
  sipCallId?: string;
  answeredAt?: string;
  endedAt: string;
  /** What the phone did after answering (clips played, keys pressed, hang-up), with times. */
  events?: { at: string; what: 'play' | 'press' | 'hangup' | 'transfer'; arg?: string; /** A played clip's length: it ends at `at` plus this. */ ms?: number }[];
  /** What the phone heard from the room (the agent), for answered calls. */
  heard?: {
    /** 20 ms audio packets received after the answer. */
    packets: number;
    /** Voiced audio received after the answer, in ms. */
    voicedMs: number;
    /** Voiced audio that reached the ringing leg before the answer, in ms (should be 0). */
    voicedBeforeAnswerMs: number;
    firstVoicedAt?: string;
    lastVoicedAt?: string;
    /** Runs of voiced audio (gaps under 200 ms joined), [start, end] (RFC 3339): what the agent said when. */
    spurts?: [string, string][];
    recording?: string;
  };
}

/**
 * livekit-server's `logging` settings, the same here (tests, demo) as in `deploy/livekit/livekit.yaml`
 * (a test compares them). livekit-server logs the dialed number (`toUser`, `callTo`) on three lines of
 * every call — the API request line (`info`, component `api`), psrpc's client error (`warn`, component
 * `psrpc`) and "cannot create sip participant" (`error`, the root logger, for every call not answered:
 * busy, no answer, declined) — and the root logger cannot be filtered by field. So the root logger only
 * logs fatal errors, and the components that never name a number log their errors.
 * `LIVEKIT_LOG_LEVEL` (debugging only) replaces all of it with one level.
 */
export const LIVEKIT_LOGGING = {
  level: 'fatal',
  component_levels: { room: 'error', rtc: 'error', sfu: 'error', pub: 'error', sub: 'error', transport: 'error', cc: 'error', agents: 'error', api: 'fatal', psrpc: 'fatal' },
} as const;
const LIVEKIT_LOGGING_YAML = [
  'logging:',
  `  level: ${LIVEKIT_LOGGING.level}`,
  '  component_levels:',
  ...Object.entries(LIVEKIT_LOGGING.component_levels).map(([component, level]) => `    ${component}: ${level}`),
].join('\n');

/** Scenario file of the simulator's scripted phones (fictional 555-01xx numbers). */
export const PHONE_SCENARIOS = fileURLToPath(new URL('../../tools/phone-sim/scenarios.json', import.meta.url));

/** Reads the simulator's call log. */
export function readCallLog(file: string): CallLogLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as CallLogLine);
}

/** Most calls up at once in the phone network's log (INVITE to the line going down; an end before a start at the same instant). */
export function maxConcurrentCalls(calls: Pick<CallLogLine, 'time' | 'endedAt'>[]): number {
  const edges = calls.flatMap((c) => [
    { at: Date.parse(c.time), d: 1 },
    { at: Date.parse(c.endedAt), d: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let up = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (up += e.d));
  return most;
}

/** Most INVITEs in any 1-s window of the phone network's log. */
export function maxInvitesPerSecond(calls: Pick<CallLogLine, 'time'>[]): number {
  const times = calls.map((c) => Date.parse(c.time)).sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i += 1) {
    while (times[i]! - times[j]! >= 1_000) j += 1;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** Waits until the call log has a line matching `match` (a call's line is written when it is over). */
export async function waitForCall(file: string, match: (line: CallLogLine) => boolean, timeoutMs = 15_000): Promise<CallLogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = readCallLog(file).find(match);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no call in the phone-network simulator's log matched within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs` (livekit-server drains rooms slowly). */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function waitFor(what: string, child: ChildProcess, log: () => string, ready: () => Promise<boolean>, timeoutMs = serverStartDeadlineMs()): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${log()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs / 1000} s: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

/** With CALL_CAMPAIGNS_LOG_DIR set, each server's whole output also goes to `<dir>/<name>.log` (debugging). */
function spawnLogged(cmd: string, args: string[], env?: Record<string, string>): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let out = '';
  const logDir = process.env.CALL_CAMPAIGNS_LOG_DIR;
  const file = logDir ? createWriteStream(join(logDir, `${basename(cmd)}.log`), { flags: 'a' }) : undefined;
  const keep = (d: Buffer) => {
    file?.write(d);
    out = (out + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, log: () => out.trim() };
}

/**
 * Starts Redis and livekit-server — and with `phones`, the phone-network simulator registered as
 * livekit-server's SIP service — and resolves when all answer.
 */
export async function startLiveKitStack(
  options: {
    phones?: boolean;
    scenarios?: string;
    /** Extra settings of the simulator (e.g. `PHONE_SIM_CPU_LOAD_FILE`, `PHONE_SIM_MEDIA_TIMEOUT_MS`; see tools/phone-sim/main.go). */
    simEnv?: Record<string, string>;
  } = {},
): Promise<LiveKitStack> {
  const dir = mkdtempSync(join(tmpdir(), 'call-campaigns-livekit-'));
  const [redisPort, httpPort, rtcTcpPort, udpStart] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const redis = spawnLogged(resolveTool('redisServer'), ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  try {
    await waitFor('redis-server', redis.child, redis.log, () => tcpOpen(redisPort));
  } catch (err) {
    await stopProcess(redis.child);
    throw err;
  }

  const apiKey = `APIcc${randomBytes(6).toString('hex')}`;
  const apiSecret = randomBytes(32).toString('base64url');
  const config = [
    `port: ${httpPort}`,
    'bind_addresses: ["127.0.0.1"]',
    'rtc:',
    `  tcp_port: ${rtcTcpPort}`,
    `  port_range_start: ${udpStart}`,
    `  port_range_end: ${udpStart + 50}`,
    '  use_external_ip: false',
    '  node_ip: 127.0.0.1',
    'redis:',
    `  address: 127.0.0.1:${redisPort}`,
    'keys:',
    `  ${apiKey}: ${apiSecret}`,
    ...(process.env.LIVEKIT_LOG_LEVEL ? ['logging:', `  level: ${process.env.LIVEKIT_LOG_LEVEL}`] : LIVEKIT_LOGGING_YAML.split('\n')),
  ].join('\n');
  const configFile = join(dir, 'livekit.yaml');
  writeFileSync(configFile, `${config}\n`, { mode: 0o600 });
  const livekit = spawnLogged(resolveTool('livekitServer'), ['--config', configFile]);
  const stop = async () => {
    await stopProcess(livekit.child);
    await stopProcess(redis.child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('livekit-server', livekit.child, livekit.log, async () => (await fetch(`http://127.0.0.1:${httpPort}/`)).ok);
  } catch (err) {
    await stop();
    throw err;
  }
  const url = `ws://127.0.0.1:${httpPort}`;
  if (!options.phones) return { url, apiKey, apiSecret, redisAddress: `127.0.0.1:${redisPort}`, stop };

  const callLogFile = join(dir, 'calls.jsonl');
  const recordDir = join(dir, 'heard');
  mkdirSync(recordDir);
  // Credentials by environment, never by argument (process listings).
  const sim = spawnLogged(resolveTool('phoneSim'), [], {
    PHONE_SIM_REDIS: `127.0.0.1:${redisPort}`,
    PHONE_SIM_WS_URL: url,
    PHONE_SIM_API_KEY: apiKey,
    PHONE_SIM_API_SECRET: apiSecret,
    PHONE_SIM_SCENARIOS: options.scenarios ?? PHONE_SCENARIOS,
    PHONE_SIM_CALL_LOG: callLogFile,
    PHONE_SIM_AUDIO_DIR: resolveTool('phoneAudio'),
    PHONE_SIM_RECORD_DIR: recordDir,
    ...options.simEnv,
  });
  try {
    await waitFor('phone-sim', sim.child, sim.log, async () => sim.log().includes('phone-sim: ready'));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    apiKey,
    apiSecret,
    redisAddress: `127.0.0.1:${redisPort}`,
    callLogFile,
    recordDir,
    async stop() {
      await stopProcess(sim.child);
      await stop();
    },
  };
}

/** The caller id of the trunks that tests and the demo create towards the phone-network simulator. */
export const SIMULATED_CALLER_ID = '+13125550100';

/** Creates an outbound trunk from `stack` to the phone-network simulator; resolves to its id. */
export async function createSimulatedTrunk(stack: Pick<LiveKitStack, 'url' | 'apiKey' | 'apiSecret'>, name = 'simulated carrier'): Promise<string> {
  const sip = new SipClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  const trunk = await sip.createSipOutboundTrunk(name, 'sip.carrier.test', [SIMULATED_CALLER_ID], { transport: SIPTransport.SIP_TRANSPORT_AUTO });
  return trunk.sipTrunkId;
}
