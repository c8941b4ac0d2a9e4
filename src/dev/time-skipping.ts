/** Temporal's time-skipping test server (Java, from Maven Central via `npm run setup`). */
import { spawn } from 'node:child_process';
// @temporalio/proto is CommonJS: a default import works under both Node ESM and bundlers.
import proto from '@temporalio/proto';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment, type ClientOptionsForTestEnv } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts';
import { serverStartDeadlineMs } from './deadlines';
import { stopProcess } from './livekit-stack';
import { freePort } from './temporal-dev-server';
import { resolveTool } from './tools';

const { temporal } = proto;

const INDEXED: Record<string, number> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
};

/** How the test server's JVM is started. */
export interface TimeSkippingServerOptions {
  /** JVM options (`JAVA_TOOL_OPTIONS`; any the caller's environment sets come after, so they win). Default: none (the JVM's defaults). */
  jvmOptions?: string[];
}

/**
 * JVM options for a short-lived test server that shares 2 cores with its worker (the forecast): the
 * quick compiler alone and the serial collector. With the defaults, C2 compiling in the background
 * took ~9 s of CPU in a 33 s forecast of 300 rows — CPU the worker and the database then lack.
 */
export const QUICK_JVM_OPTIONS: readonly string[] = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];

/**
 * Starts a time-skipping test environment on the locally installed test server, with the project's
 * search attributes. Use `env.client` (built with `client` options, e.g. the data converter): only
 * its workflow client skips time while awaiting results.
 *
 * The server is started and awaited here, not by the SDK: the SDK gives the JVM a fixed 5 s, which
 * a busy machine (CI neighbours, a load of 12 on 2 cores) does not always meet. Here the deadline is
 * {@link serverStartDeadlineMs}, and the wait ends as soon as the server answers.
 */
export async function createTimeSkippingEnv(client?: ClientOptionsForTestEnv, options: TimeSkippingServerOptions = {}): Promise<TestWorkflowEnvironment> {
  const path = resolveTool('temporalTestServer');
  const port = await freePort();
  const childEnv = options.jvmOptions ? { ...process.env, JAVA_TOOL_OPTIONS: [...options.jvmOptions, process.env.JAVA_TOOL_OPTIONS ?? ''].join(' ').trim() } : process.env;
  // As the SDK starts it: time skipping stays off until a client unlocks it (while awaiting a result).
  const child = spawn(path, [String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await stopProcess(child, 5_000);
  };

  const address = `127.0.0.1:${port}`;
  const timeoutMs = serverStartDeadlineMs();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Temporal test server exited (${child.exitCode}) at start: ${stderr.trim()}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.getSystemInfo({});
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the Temporal test server did not answer within ${timeoutMs / 1000} s (CALL_CAMPAIGNS_SERVER_START_SECONDS): ${(err as Error).message} ${stderr.trim()}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  let env: TestWorkflowEnvironment;
  try {
    // `create` is what `createTimeSkipping` calls after starting its own server; its public
    // siblings either start the server themselves (the fixed 5 s) or turn time skipping off.
    const create = (TestWorkflowEnvironment as unknown as { create(opts: Record<string, unknown>): Promise<TestWorkflowEnvironment> }).create.bind(TestWorkflowEnvironment);
    env = await create({ server: { type: 'existing' }, address, supportsTimeSkipping: true, namespace: 'default', client });
    // The test server knows only Temporal's built-in search attributes until told about ours.
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(Object.entries(SEARCH_ATTRIBUTE_TYPES).map(([name, type]) => [name, INDEXED[type]!])),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const teardown = env.teardown.bind(env);
  // The environment does not own a server it did not start: stop it after the connections close.
  env.teardown = async () => {
    try {
      await teardown();
    } finally {
      await stop();
    }
  };
  return env;
}
