/**
 * Where the real servers' binaries are: an explicit environment variable first, then what
 * `npm run setup` recorded for this checkout, then the PATH. A missing tool is an error that says
 * how to install it — tests never skip for lack of a server.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tools `scripts/setup.sh` installs. */
export type ToolName = 'temporal' | 'temporalTestServer' | 'temporalServer' | 'livekitServer' | 'redisServer' | 'pgBinDir' | 'composeCheck' | 'phoneSim' | 'phoneAudio' | 'espeakNg' | 'chromium';

const ENV: Record<ToolName, string> = {
  temporal: 'TEMPORAL_CLI',
  temporalTestServer: 'TEMPORAL_TEST_SERVER',
  temporalServer: 'TEMPORAL_SERVER_DIR',
  livekitServer: 'LIVEKIT_SERVER',
  redisServer: 'REDIS_SERVER',
  pgBinDir: 'PG_BIN_DIR',
  composeCheck: 'COMPOSE_CHECK',
  phoneSim: 'PHONE_SIM',
  phoneAudio: 'PHONE_SIM_AUDIO_DIR',
  espeakNg: 'ESPEAK_NG',
  chromium: 'CHROMIUM',
};
const ON_PATH: Partial<Record<ToolName, string>> = {
  temporal: 'temporal',
  livekitServer: 'livekit-server',
  redisServer: 'redis-server',
  espeakNg: 'espeak-ng',
  chromium: 'chromium',
};

const usable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The tool list `npm run setup` writes for this checkout. */
export const TOOLS_JSON = fileURLToPath(new URL('../../node_modules/.cache/call-campaigns/tools.json', import.meta.url));

/** Absolute path of `name`; throws naming the tool and `npm run setup` when it is missing. */
export function resolveTool(name: ToolName): string {
  const fromEnv = process.env[ENV[name]];
  if (fromEnv) {
    if (!usable(fromEnv)) throw new Error(`${ENV[name]}=${fromEnv} is not an executable ${name === 'pgBinDir' || name === 'phoneAudio' || name === 'temporalServer' ? 'directory' : 'file'}`);
    return fromEnv;
  }
  try {
    const recorded = (JSON.parse(readFileSync(TOOLS_JSON, 'utf8')) as Partial<Record<ToolName, string>>)[name];
    if (recorded && usable(recorded)) return recorded;
  } catch {
    // No setup yet: fall through to PATH.
  }
  const binary = ON_PATH[name];
  if (binary) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir && usable(join(dir, binary))) return join(dir, binary);
    }
  }
  throw new Error(`${name} is not installed: run \`npm run setup\` (scripts/setup.sh installs it), or set ${ENV[name]} to its path`);
}
