/** docker-compose.yml, validated by compose-go (Docker Compose v2's parser), built by `npm run setup`. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../src/contracts';
import { DYNAMIC_CONFIG_FILE, SETUP_NAMESPACE_SCRIPT, SETUP_SCHEMA_SCRIPT } from '../src/dev/temporal-server';
import { resolveTool } from '../src/dev/tools';

const run = promisify(execFile);
const file = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
const check = (path: string, ...env: string[]) => run(resolveTool('composeCheck'), [...env.flatMap((e) => ['-env', e]), path]);
const deploy = (path: string) => fileURLToPath(new URL(`../deploy/${path}`, import.meta.url));
const SECRETS = ['POSTGRES_PASSWORD=example', 'LIVEKIT_API_KEY=APIexample', 'LIVEKIT_API_SECRET=example-secret', 'GRAFANA_ADMIN_PASSWORD=example'];
const ENV = SECRETS;

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
    expect(services).toEqual(['agent', 'codec-server', 'grafana', 'livekit', 'livekit-sip', 'postgresql', 'prometheus', 'redis', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui', 'worker']);
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
    await expect(check(file, ...SECRETS.filter((s) => !s.startsWith('GRAFANA')))).rejects.toThrow(/required variable GRAFANA_ADMIN_PASSWORD is missing/);
  });

  it('Prometheus scrapes the metrics ports the worker and the agent serve, and Grafana loads the dashboards from it', () => {
    type Service = { environment?: Record<string, string>; volumes?: string[] };
    const compose = parse(readFileSync(file, 'utf8')) as { services: Record<string, Service> };
    const scrape = parse(readFileSync(deploy('prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }[];
    };
    // Every port a service serves metrics on is scraped under its name, and nothing else is.
    const served = Object.entries(compose.services).flatMap(([name, s]) =>
      ['METRICS_PORT', 'TEMPORAL_METRICS_PORT'].filter((v) => s.environment?.[v]).map((v) => `${name}:${s.environment![v]}`),
    );
    const scraped = scrape.scrape_configs.flatMap((c) => c.dns_sd_configs.flatMap((d) => d.names.map((n) => `${n}:${d.port}`)));
    expect(scraped.sort()).toEqual(served.sort());
    expect(served.sort()).toEqual(['agent:9464', 'worker:9464', 'worker:9465']);
    // Listening beyond the container's loopback, or Prometheus reaches nothing.
    for (const name of ['worker', 'agent']) expect(compose.services[name]!.environment!.METRICS_HOST).toBe('0.0.0.0');
    expect(compose.services.prometheus!.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');

    // Grafana: the provisioned datasource is the prometheus service, under the uid every dashboard panel names.
    const grafana = compose.services.grafana!.volumes!;
    expect(grafana).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(grafana).toContain('./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro');
    const sources = parse(readFileSync(deploy('grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: { uid: string; url: string }[] };
    expect(sources.datasources).toEqual([expect.objectContaining({ uid: 'prometheus', url: 'http://prometheus:9090' })]);
    const providers = parse(readFileSync(deploy('grafana/provisioning/dashboards/call-campaigns.yaml'), 'utf8')) as { providers: { options: { path: string } }[] };
    expect(providers.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');
    const dashboard = JSON.parse(readFileSync(deploy('grafana/dashboards/call-campaigns.json'), 'utf8')) as { panels: { type: string; datasource?: { uid: string } }[] };
    const uids = new Set(dashboard.panels.filter((p) => p.type !== 'row').map((p) => p.datasource?.uid));
    expect([...uids]).toEqual(['prometheus']);
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
