/**
 * The `temporal server start-dev` process used by the demo and the end-to-end tests: loopback only,
 * free ports, the project's search attributes registered at start, stopped with its parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts';
import { resolveTool } from './tools';
import { serverStartDeadlineMs } from './deadlines';

export interface DevServerOptions {
  /** Frontend gRPC port. Default: a free port. */
  port?: number;
  /** Web UI port (when not headless). Default: a free port. */
  uiPort?: number;
  /** SQLite file to keep state across runs. Default: in memory. */
  dbFile?: string;
  /** No Web UI. Default true. */
  headless?: boolean;
  namespace?: string;
  /** More `temporal server start-dev` flags (e.g. `--ui-codec-endpoint URL`). */
  extraArgs?: string[];
}

export interface DevServer {
  /** `127.0.0.1:<port>` */
  address: string;
  /** `http://127.0.0.1:<uiPort>` unless headless. */
  uiUrl?: string;
  namespace: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A port nothing listens on right now (loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts the dev server and resolves once its namespace answers. */
export async function startTemporalDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const binary = resolveTool('temporal');
  const port = options.port ?? (await freePort());
  const headless = options.headless ?? true;
  const uiPort = headless ? undefined : (options.uiPort ?? (await freePort()));
  const namespace = options.namespace ?? 'default';
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--namespace', namespace,
    '--log-level', 'error',
    // Temporal's own CI settings for SQLite: far fewer fsyncs, same semantics for a dev server.
    '--sqlite-pragma', 'journal_mode=WAL',
    '--sqlite-pragma', 'synchronous=OFF',
    ...Object.entries(SEARCH_ATTRIBUTE_TYPES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...(headless ? ['--headless'] : ['--ui-ip', '127.0.0.1', '--ui-port', String(uiPort)]),
    ...(options.extraArgs ?? []),
  ];
  // With CALL_CAMPAIGNS_LOG_DIR set, its whole output also goes to `<dir>/temporal.log` (debugging; the server-logs test reads it).
  const logDir = process.env.CALL_CAMPAIGNS_LOG_DIR;
  const child = spawn(binary, args, { stdio: ['ignore', logDir ? 'pipe' : 'ignore', 'pipe'] });
  const logFile = logDir ? createWriteStream(join(logDir, 'temporal.log'), { flags: 'a' }) : undefined;
  child.stdout?.on('data', (d: Buffer) => logFile?.write(d));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    logFile?.write(d);
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const address = `127.0.0.1:${port}`;
  const timeoutMs = serverStartDeadlineMs();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited (${child.exitCode}): ${stderr.trim()}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal dev server not ready after ${timeoutMs / 1000} s (CALL_CAMPAIGNS_SERVER_START_SECONDS): ${(err as Error).message} ${stderr.trim()}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { address, uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined, namespace, process: child, stop };
}
