/** docker-compose.yml, validated by compose-go (Docker Compose v2's parser), built by `npm run setup`. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../src/contracts';
import { DYNAMIC_CONFIG_FILE, SETUP_NAMESPACE_SCRIPT, SETUP_SCHEMA_SCRIPT } from '../src/dev/temporal-server';
import { resolveTool } from '../src/dev/tools';

const run = promisify(execFile);
const file = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
const check = (path: string, ...env: string[]) => run(resolveTool('composeCheck'), [...env.flatMap((e) => ['-env', e]), path]);
const ENV = ['POSTGRES_PASSWORD=example', 'LIVEKIT_API_KEY=APIexample', 'LIVEKIT_API_SECRET=example-secret'];

interface Service {
  image?: string;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  volumes?: { source: string; target: string }[];
  depends_on?: Record<string, { condition: string }>;
}
/** The project as Docker Compose resolves it (compose-go: variables interpolated, paths absolute). */
async function resolved(): Promise<Record<string, Service>> {
  const { stdout } = await run(resolveTool('composeCheck'), [...ENV.flatMap((e) => ['-env', e]), '-json', file]);
  return (JSON.parse(stdout) as { services: Record<string, Service> }).services;
}
/** The Temporal server version `npm run setup` builds for the tests (scripts/setup.sh). */
const testedVersion = () => /^TEMPORAL_SERVER_VERSION=v(\S+)$/m.exec(readFileSync(fileURLToPath(new URL('../scripts/setup.sh', import.meta.url)), 'utf8'))![1]!;
/** The script a one-shot service runs: the host file mounted where its entrypoint points. */
const scriptOf = (service: Service) => service.volumes?.find((v) => v.target === service.entrypoint?.[1])?.source;

describe('docker-compose.yml', () => {
  it('is a valid Compose project with the production services', async () => {
    const { stdout } = await check(file, ...ENV);
    const services = /services (\S+)/.exec(stdout)![1]!.split(',').sort();
    expect(services).toEqual(['agent', 'codec-server', 'livekit', 'livekit-sip', 'postgresql', 'redis', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui', 'worker']);
  });

  it('runs the Temporal server image the tests run (not the deprecated auto-setup), after the schema step, with the dynamic config the tests use', async () => {
    const services = await resolved();
    const version = testedVersion();
    expect(services.temporal!.image).toBe(`temporalio/server:${version}`);
    expect(Object.values(services).map((s) => s.image ?? '')).not.toContainEqual(expect.stringContaining('auto-setup'));
    for (const step of ['temporal-schema', 'temporal-namespace']) expect(services[step]!.image).toMatch(new RegExp(`^temporalio/admin-tools:${version.replaceAll('.', '\\.')}(-|$)`));
    expect(services.temporal!.depends_on).toMatchObject({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    // The image's working directory is /etc/temporal: the file the server reads, mapped back to the host.
    const inContainer = posix.join('/etc/temporal', services.temporal!.environment!.DYNAMIC_CONFIG_FILE_PATH!);
    const mount = services.temporal!.volumes!.find((v) => inContainer.startsWith(`${v.target}/`))!;
    expect(join(mount.source, posix.relative(mount.target, inContainer))).toBe(DYNAMIC_CONFIG_FILE);
  });

  it('sets up the schema and the namespace with the scripts the test helper runs, before any worker or agent starts', async () => {
    const services = await resolved();
    expect(scriptOf(services['temporal-schema']!)).toBe(SETUP_SCHEMA_SCRIPT);
    expect(Object.keys(services['temporal-schema']!.environment!).sort()).toEqual(['SQL_HOST', 'SQL_PASSWORD', 'SQL_PORT', 'SQL_USER']);
    expect(scriptOf(services['temporal-namespace']!)).toBe(SETUP_NAMESPACE_SCRIPT);
    expect(services['temporal-namespace']!.depends_on).toMatchObject({ temporal: { condition: 'service_healthy' } });
    for (const name of ['worker', 'agent']) {
      expect(services[name]!.depends_on).toMatchObject({ 'temporal-namespace': { condition: 'service_completed_successfully' } });
      expect(services[name]!.environment!.TEMPORAL_NAMESPACE).toBe(services['temporal-namespace']!.environment!.TEMPORAL_NAMESPACE);
    }
  });

  it('the namespace step registers exactly the search attributes the workflows set', () => {
    const list = /^SEARCH_ATTRIBUTES="([^"]*)"$/m.exec(readFileSync(SETUP_NAMESPACE_SCRIPT, 'utf8'))![1]!;
    expect(Object.fromEntries(list.split(' ').map((pair) => pair.split(':')))).toEqual(SEARCH_ATTRIBUTE_TYPES);
  });

  it('refuses to start without the database password and LiveKit keys (no default credentials)', async () => {
    await expect(check(file)).rejects.toThrow(/required variable POSTGRES_PASSWORD is missing/);
    await expect(check(file, 'POSTGRES_PASSWORD=example')).rejects.toThrow(/required variable LIVEKIT_API_KEY is missing/);
  });

  it('holds no literal secrets', () => {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/(SECRET|PASSWORD|KEY)\s*[:=]\s*["']?[A-Za-z0-9+/]{8,}/);
  });

  it('the checker catches a broken file (it is a real parser)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      const broken = join(dir, 'docker-compose.yml');
      writeFileSync(broken, 'services:\n  worker:\n    image: node:20\n    depends_on: [nowhere]\n');
      await expect(check(broken)).rejects.toThrow(/nowhere/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
