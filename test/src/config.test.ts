import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config';
import { ConfigError, loadConfig } from '../../src/config';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_WORKER_HEAP_MB } from '../../src/worker-defaults';

const base = {
  PAYLOAD_ENCRYPTION_KEY: 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
  LIVEKIT_URL: 'ws://127.0.0.1:7880',
  LIVEKIT_API_KEY: 'devkey',
  LIVEKIT_API_SECRET: 'a-secret-that-must-not-be-printed',
  LIVEKIT_SIP_TRUNK_ID: 'ST_test',
};

describe('loadConfig', () => {
  it('applies defaults', () => {
    const config = loadConfig(base);
    expect(config.temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'call-campaigns' });
    expect(config.database).toEqual({ url: undefined, dataDir: '.data/pglite' });
    expect(config.rules).toMatchObject({ days: [1, 2, 3, 4, 5, 6], start: '09:00', end: '19:00', maxCallsPerDay: 1, maxCallsPerWeek: 3 });
  });

  it('agent dispatch: at the dial by default (first words at the answer); `answer` kept as an option; a bad value is named', () => {
    expect(loadConfig(base).livekit.agentDispatch).toBe('dial');
    expect(loadConfig({ ...base, LIVEKIT_AGENT_DISPATCH: 'answer' }).livekit.agentDispatch).toBe('answer');
    expect(() => loadConfig({ ...base, LIVEKIT_AGENT_DISPATCH: 'ring' })).toThrow(/LIVEKIT_AGENT_DISPATCH: must be answer or dial/);
  });

  it('trunk limits: defaults 10 channels and 5 calls per second; bad values are named', () => {
    expect(loadConfig(base).trunkLimits).toEqual({ channels: 10, callsPerSecond: 5 });
    expect(loadConfig({ ...base, TRUNK_MAX_CHANNELS: '3', TRUNK_MAX_CALLS_PER_SECOND: '0.5' }).trunkLimits).toEqual({ channels: 3, callsPerSecond: 0.5 });
    expect(() => loadConfig({ ...base, TRUNK_MAX_CHANNELS: '0', TRUNK_MAX_CALLS_PER_SECOND: 'x' })).toThrow(/TRUNK_MAX_CHANNELS: must be at least 1.*TRUNK_MAX_CALLS_PER_SECOND/);
  });

  it('worker memory: workflow cache and heap limit, defaults and bad values named; `npm run worker` passes the same heap default to node', () => {
    expect(loadConfig(base)).toMatchObject({ maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS, heapMb: DEFAULT_WORKER_HEAP_MB });
    expect(loadConfig({ ...base, WORKER_MAX_CACHED_WORKFLOWS: '800', WORKER_HEAP_MB: '512' })).toMatchObject({ maxCachedWorkflows: 800, heapMb: 512 });
    expect(() => loadConfig({ ...base, WORKER_MAX_CACHED_WORKFLOWS: '1', WORKER_HEAP_MB: 'lots' })).toThrow(/WORKER_MAX_CACHED_WORKFLOWS: must be at least 2.*WORKER_HEAP_MB: must be a whole number of MB/);
    const scripts = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.worker).toContain(`--max-old-space-size=\${WORKER_HEAP_MB:-${DEFAULT_WORKER_HEAP_MB}}`);
  });

  it('metrics: off unless METRICS_PORT / TEMPORAL_METRICS_PORT are set; bad ports and hosts named (worker and agent alike)', () => {
    expect(loadConfig(base).metrics).toEqual({ host: '127.0.0.1', port: undefined, temporalPort: undefined });
    expect(loadConfig({ ...base, METRICS_PORT: '', TEMPORAL_METRICS_PORT: '' }).metrics).toEqual({ host: '127.0.0.1', port: undefined, temporalPort: undefined });
    expect(loadConfig({ ...base, METRICS_HOST: '0.0.0.0', METRICS_PORT: '9464', TEMPORAL_METRICS_PORT: '9465' }).metrics).toEqual({ host: '0.0.0.0', port: 9464, temporalPort: 9465 });
    expect(() => loadConfig({ ...base, METRICS_PORT: '70000', TEMPORAL_METRICS_PORT: 'x', METRICS_HOST: 'a b' })).toThrow(
      /METRICS_HOST: must be an address to listen on.*METRICS_PORT: must be a port number \(1-65535\).*TEMPORAL_METRICS_PORT: must be a port number/,
    );
    expect(() => loadConfig({ ...base, METRICS_PORT: '9464', TEMPORAL_METRICS_PORT: '9464' })).toThrow(/TEMPORAL_METRICS_PORT: must differ from METRICS_PORT/);
    const agent = { ...base, LIVEKIT_SIP_TRUNK_ID: undefined };
    expect(loadAgentConfig(agent).metrics).toEqual({ host: '127.0.0.1', port: undefined });
    expect(loadAgentConfig({ ...agent, METRICS_HOST: '0.0.0.0', METRICS_PORT: '9464' }).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(() => loadAgentConfig({ ...agent, METRICS_PORT: '0' })).toThrow(/METRICS_PORT: must be a port number/);
  });

  it('fails fast naming every missing or bad setting, without echoing secrets', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ LIVEKIT_API_SECRET: base.LIVEKIT_API_SECRET, LIVEKIT_URL: 'ftp://x', TEMPORAL_ADDRESS: 'nohost', CALLING_END: '22:00', MAX_CALLS_PER_DAY: 'x' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = error!.message;
    for (const name of ['PAYLOAD_ENCRYPTION_KEY', 'LIVEKIT_API_KEY', 'LIVEKIT_SIP_TRUNK_ID', 'LIVEKIT_URL', 'TEMPORAL_ADDRESS', 'CALLING_END', 'MAX_CALLS_PER_DAY']) {
      expect(text).toContain(name);
    }
    expect(text).not.toContain(base.LIVEKIT_API_SECRET);
  });

  it('rejects a payload key of the wrong size without printing it', () => {
    expect(() => loadConfig({ ...base, PAYLOAD_ENCRYPTION_KEY: 'k1:c2hvcnQ=' })).toThrow(/PAYLOAD_ENCRYPTION_KEY: must be base64 of 32 bytes/);
    expect(() => loadConfig({ ...base, PAYLOAD_ENCRYPTION_KEY: 'k1:c2hvcnQ=' })).not.toThrow(/c2hvcnQ/);
  });
});
