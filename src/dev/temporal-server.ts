/**
 * Temporal's own server on PostgreSQL — the production shape — for the tests, the benchmarks and a
 * developer without Docker: a PostgreSQL server (src/dev/postgres.ts), Temporal's two databases set up
 * by `deploy/temporal/setup-schema.sh` (temporal-sql-tool), the server with SQL visibility on free
 * loopback ports, and the namespace and search attributes registered by
 * `deploy/temporal/setup-namespace.sh` (the Temporal CLI, through the operator API). Compose runs the
 * same two scripts, in the admin-tools image, against the same server version (test/compose.test.ts).
 *
 * `npm run setup` builds `temporal-server` and `temporal-sql-tool` from the Go module proxy and copies
 * that module's versioned PostgreSQL schemas and its `config/development-postgres12.yaml`, which this
 * helper turns into the server's config (ports, addresses and credentials replaced).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
// @temporalio/proto is CommonJS: a default import works under both Node ESM and bundlers.
import proto from '@temporalio/proto';
import { parse, stringify } from 'yaml';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts';
import { serverStartDeadlineMs } from './deadlines';
import { startPostgres, type PostgresServer } from './postgres';
import { freePort, startTemporalDevServer, type DevServer, type DevServerOptions } from './temporal-dev-server';
import { resolveTool } from './tools';

const { temporal } = proto;

/** The scripts Compose runs too (services temporal-schema and temporal-namespace). */
export const SETUP_SCHEMA_SCRIPT = fileURLToPath(new URL('../../deploy/temporal/setup-schema.sh', import.meta.url));
export const SETUP_NAMESPACE_SCRIPT = fileURLToPath(new URL('../../deploy/temporal/setup-namespace.sh', import.meta.url));
/** The server's dynamic config, Compose's too. */
export const DYNAMIC_CONFIG_FILE = fileURLToPath(new URL('../../deploy/temporal/dynamicconfig/call-campaigns.yaml', import.meta.url));

/** The example config of the server module that `npm run setup` copies next to the binaries. */
const EXAMPLE_CONFIG = 'development-postgres12';

export interface TemporalServerOptions {
  /** Default `default`. */
  namespace?: string;
  /**
   * The PostgreSQL server that holds (or will hold) Temporal's databases: the schema steps are safe to
   * re-run, so a server started again on the same PostgreSQL finds its workflows. Default: a fresh one,
   * stopped with the Temporal server.
   */
  postgres?: PostgresServer;
  /** The server's log level (default `warn`). */
  logLevel?: string;
}

export interface TemporalServer {
  /** `127.0.0.1:<port>` of the frontend. */
  address: string;
  namespace: string;
  /** The `temporal-server` process. */
  process: ChildProcess;
  /** Where Temporal's databases are. */
  postgres: PostgresServer;
  /** The server's Prometheus endpoint, `http://127.0.0.1:<port>/metrics`. */
  metricsUrl: string;
  /** SIGKILLs the server process (a crash), leaving its databases; resolves once it has exited. */
  kill(): Promise<void>;
  /**
   * Starts the server again (after `kill`, or SIGKILLing it first) on the same ports and databases;
   * resolves once its frontend answers. Workers and clients keep their address and reconnect.
   */
  restart(): Promise<void>;
  /** Stops the server (SIGTERM, SIGKILL after 10 s), and PostgreSQL when this helper started it. */
  stop(): Promise<void>;
}

/** The directory `npm run setup` fills: the two binaries, `schema/postgresql/v12`, `config/`. */
export function temporalServerDir(): string {
  const dir = resolveTool('temporalServer');
  for (const part of ['temporal-server', 'temporal-sql-tool', 'schema/postgresql/v12', `config/${EXAMPLE_CONFIG}.yaml`]) {
    if (!existsSync(join(dir, part))) {
      throw new Error(`the Temporal server install in ${dir} lacks ${part}: run \`npm run setup\` (scripts/setup.sh builds it), or set TEMPORAL_SERVER_DIR`);
    }
  }
  return dir;
}

/** Runs a setup script; its output becomes part of the error when it fails. */
function runScript(script: string, env: Record<string, string>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sh', [script], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const tail = `${stdout}${stderr}`.trim().slice(-3000);
        reject(new Error(`${script.split('/').pop()} failed (${err.code ?? err.signal ?? err.message}): ${tail}`, { cause: err }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * A free loopback port below 32768: the server records its services' ports in PostgreSQL as
 * `smallint` (cluster_membership.rpc_port), and the kernel's ephemeral ports are above that range.
 */
async function freeLowPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.unref();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free loopback port below 32768 for the Temporal server after 50 tries');
}

type ServiceName = 'frontend' | 'history' | 'matching' | 'worker';
interface ServerConfig {
  log?: unknown;
  persistence: { defaultStore: string; visibilityStore: string; datastores: Record<string, { sql?: Record<string, unknown> }> };
  global: { pprof?: unknown; metrics?: { prometheus?: Record<string, unknown> } } & Record<string, unknown>;
  services: Record<ServiceName, { rpc: Record<string, unknown> }>;
  clusterMetadata: { clusterInformation: Record<string, { rpcAddress: string; httpAddress?: string }> };
  dynamicConfigClient: { filepath: string; pollInterval: string };
}

/**
 * The module's example config for this PostgreSQL, free ports, the project's dynamic config; returns
 * the config and the two database names (as the example names them).
 */
async function serverConfig(example: string, postgres: URL, logLevel: string) {
  const config = parse(example) as ServerConfig;
  config.log = { stdout: true, level: logLevel };
  for (const store of Object.values(config.persistence.datastores)) {
    if (!store.sql) continue;
    Object.assign(store.sql, {
      connectAddr: `${postgres.hostname}:${postgres.port}`,
      user: decodeURIComponent(postgres.username),
      password: decodeURIComponent(postgres.password),
    });
  }
  const database = (store: string) => {
    const name = config.persistence.datastores[store]?.sql?.databaseName;
    if (typeof name !== 'string') throw new Error(`${EXAMPLE_CONFIG}.yaml: datastore ${store} has no SQL databaseName`);
    return name;
  };
  const ports: Record<string, number> = {};
  for (const service of ['frontend', 'history', 'matching', 'worker'] as const) {
    const rpc = config.services[service].rpc;
    rpc.grpcPort = ports[`${service}Grpc`] = await freeLowPort();
    rpc.membershipPort = await freeLowPort();
    if (service === 'frontend') rpc.httpPort = ports.frontendHttp = await freeLowPort();
    rpc.bindOnLocalHost = true;
  }
  // pprof off; Prometheus on a free port (the project's metrics scrape it).
  delete config.global.pprof;
  const metricsPort = await freePort();
  if (config.global.metrics?.prometheus) config.global.metrics.prometheus.listenAddress = `127.0.0.1:${metricsPort}`;
  for (const cluster of Object.values(config.clusterMetadata.clusterInformation)) {
    cluster.rpcAddress = `127.0.0.1:${ports.frontendGrpc}`;
    cluster.httpAddress = `127.0.0.1:${ports.frontendHttp}`;
  }
  config.dynamicConfigClient = { filepath: DYNAMIC_CONFIG_FILE, pollInterval: '10s' };
  return {
    config,
    frontend: `127.0.0.1:${ports.frontendGrpc}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    databases: { main: database(config.persistence.defaultStore), visibility: database(config.persistence.visibilityStore) },
  };
}

/** Polls `probe` until it resolves; throws naming `what` and the last error past the deadline. */
async function poll<T>(what: string, deadline: number, alive: () => string | undefined, probe: () => Promise<T>): Promise<T> {
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(`temporal-server exited while waiting for ${what}: ${dead}`);
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`temporal-server: ${what} not ready within the deadline (CALL_CAMPAIGNS_SERVER_START_SECONDS): ${(err as Error).message}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Starts PostgreSQL (unless given), sets up the schema, starts the server and registers the namespace. */
export async function startTemporalServer(options: TemporalServerOptions = {}): Promise<TemporalServer> {
  const dir = temporalServerDir();
  const cli = resolveTool('temporal');
  const namespace = options.namespace ?? 'default';
  const timeoutMs = serverStartDeadlineMs();
  const deadline = Date.now() + timeoutMs;
  const postgres = options.postgres ?? (await startPostgres());
  const ownsPostgres = !options.postgres;
  const work = mkdtempSync(join(tmpdir(), 'call-campaigns-temporal-'));
  let child: ChildProcess | undefined;
  const cleanUp = async () => {
    rmSync(work, { recursive: true, force: true });
    if (ownsPostgres) await postgres.stop();
  };
  try {
    const pgUrl = new URL(postgres.url);
    const example = readFileSync(join(dir, 'config', `${EXAMPLE_CONFIG}.yaml`), 'utf8');
    const logLevel = options.logLevel ?? 'warn';
    const { databases } = await serverConfig(example, pgUrl, logLevel);
    await runScript(
      SETUP_SCHEMA_SCRIPT,
      {
        SQL_HOST: pgUrl.hostname,
        SQL_PORT: pgUrl.port,
        SQL_USER: decodeURIComponent(pgUrl.username),
        SQL_PASSWORD: decodeURIComponent(pgUrl.password),
        TEMPORAL_DB: databases.main,
        TEMPORAL_VISIBILITY_DB: databases.visibility,
        TEMPORAL_SQL_TOOL: join(dir, 'temporal-sql-tool'),
        TEMPORAL_SCHEMA_DIR: join(dir, 'schema', 'postgresql', 'v12'),
      },
      Math.max(deadline - Date.now(), 1_000),
    );
    mkdirSync(join(work, 'config'));

    const logDir = process.env.CALL_CAMPAIGNS_LOG_DIR;
    const logFile = logDir ? createWriteStream(join(logDir, 'temporal-server.log'), { flags: 'a' }) : undefined;
    type Ports = Pick<Awaited<ReturnType<typeof serverConfig>>, 'config' | 'frontend' | 'metricsUrl'>;
    /** Starts the server on fresh free ports (or on `ports`, a restart); resolves once its frontend answers. */
    const launch = async (ports?: Ports) => {
      const { config, frontend, metricsUrl } = ports ?? (await serverConfig(example, pgUrl, logLevel));
      writeFileSync(join(work, 'config', `${EXAMPLE_CONFIG}.yaml`), stringify(config));
      const server = spawn(join(dir, 'temporal-server'), ['--root', work, '--config', 'config', '--env', EXAMPLE_CONFIG, '--allow-no-auth', 'start'], {
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = server;
      let output = '';
      const keep = (d: Buffer) => {
        logFile?.write(d);
        output = (output + d.toString()).slice(-4000);
      };
      server.stdout.on('data', keep);
      server.stderr.on('data', keep);
      const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      const killOnExit = () => server.kill('SIGKILL');
      process.once('exit', killOnExit);
      const dead = () => (server.exitCode !== null || server.signalCode !== null ? `${server.exitCode ?? server.signalCode}: ${output.trim()}` : undefined);
      const halt = async () => {
        process.off('exit', killOnExit);
        if (!dead()) {
          server.kill('SIGTERM');
          const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }
      };
      try {
        // A restart gets a start-up deadline of its own.
        const connection = await poll('the frontend', ports ? Date.now() + timeoutMs : deadline, dead, async () => {
          const c = await Connection.connect({ address: frontend, connectTimeout: 1_000 });
          try {
            await c.workflowService.getSystemInfo({});
            return c;
          } catch (err) {
            await c.close();
            throw err;
          }
        });
        return { server, config, frontend, metricsUrl, connection, dead, halt };
      } catch (err) {
        await halt();
        throw err;
      }
    };
    // A port free when chosen may be taken before the server binds it: then again on other ports.
    let launched: Awaited<ReturnType<typeof launch>> | undefined;
    for (let tries = 1; !launched; tries += 1) {
      try {
        launched = await launch();
      } catch (err) {
        if (tries >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
      }
    }
    const { config, frontend, metricsUrl, connection, dead } = launched;
    let current = launched;

    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        await current.halt();
        logFile?.end();
        await cleanUp();
      })());

    try {
      try {
        await runScript(
          SETUP_NAMESPACE_SCRIPT,
          { TEMPORAL_ADDRESS: frontend, TEMPORAL_NAMESPACE: namespace, TEMPORAL_CLI: cli, SETUP_DEADLINE_SECONDS: String(Math.ceil((deadline - Date.now()) / 1000)) },
          Math.max(deadline - Date.now(), 1_000),
        );
        // The script is shared with Compose: check here that what it registered is what the workflows set.
        await poll('the search attributes', deadline, dead, async () => {
          const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
          for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) {
            const registered = customAttributes[name];
            const expected = temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${type.toUpperCase()}` as 'INDEXED_VALUE_TYPE_KEYWORD'];
            if (registered !== expected) throw new Error(`search attribute ${name} is not registered as ${type} in namespace ${namespace}`);
          }
        });
        // The frontend maps the attributes through its namespace cache, refreshed every few seconds: ready
        // once a query naming all of them is accepted (a workflow started with them before that is refused).
        const query = Object.entries(SEARCH_ATTRIBUTE_TYPES)
          .map(([name, type]) => (type === 'Datetime' ? `${name} > "2000-01-01T00:00:00Z"` : `${name} = "probe"`))
          .join(' AND ');
        await poll(`namespace ${namespace} with its search attributes`, deadline, dead, () => connection.workflowService.countWorkflowExecutions({ namespace, query }));
      } finally {
        await connection.close();
      }
    } catch (err) {
      await stop();
      throw err;
    }
    const kill = async () => {
      const { server } = current;
      if (server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      server.kill('SIGKILL');
      await exited;
    };
    const restart = async () => {
      if (stopped) throw new Error('temporal-server: stopped; start a new one instead of restarting it');
      await kill();
      // Same ports (clients keep their address), same databases: what a crashed server's supervisor does.
      const again = await launch({ config, frontend, metricsUrl });
      await again.connection.close();
      current = again;
    };
    return {
      address: frontend,
      namespace,
      get process() {
        return current.server;
      },
      postgres,
      metricsUrl,
      kill,
      restart,
      stop,
    };
  } catch (err) {
    // Past a failed launch (its server already halted) or before any: nothing else holds the directory.
    if (!child || child.exitCode !== null || child.signalCode !== null) await cleanUp();
    throw err;
  }
}

/** Which Temporal server a suite or the demo runs on: the CLI's dev server (SQLite) or this one. */
export type TemporalServerKind = 'dev' | 'postgres';

/** `CALL_CAMPAIGNS_TEMPORAL_SERVER` (`dev`, the default, or `postgres`): runs a suite on the production server. */
export function temporalServerKind(env: NodeJS.ProcessEnv = process.env): TemporalServerKind {
  const raw = env.CALL_CAMPAIGNS_TEMPORAL_SERVER;
  if (raw === undefined || raw === '' || raw === 'dev') return 'dev';
  if (raw === 'postgres') return 'postgres';
  throw new Error('CALL_CAMPAIGNS_TEMPORAL_SERVER: must be `dev` (the CLI dev server) or `postgres` (Temporal server on PostgreSQL)');
}

/**
 * Starts the chosen server: both answer on `address` with the namespace and the project's search
 * attributes. Dev server options (Web UI, SQLite file) apply to the dev server only.
 */
export async function startTemporal(kind: TemporalServerKind, devOptions: DevServerOptions = {}): Promise<DevServer | TemporalServer> {
  return kind === 'dev' ? startTemporalDevServer(devOptions) : startTemporalServer({ namespace: devOptions.namespace });
}
