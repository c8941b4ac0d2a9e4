/** Temporal's time-skipping test server (Java, from Maven Central via `npm run setup`). */
// @temporalio/proto is CommonJS: a default import works under both Node ESM and bundlers.
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment, type ClientOptionsForTestEnv } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts';
import { resolveTool } from './tools';

const { temporal } = proto;

const INDEXED: Record<string, number> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
};

/**
 * Starts a time-skipping test environment on the locally installed test server, with the project's
 * search attributes. Use `env.client` (built with `client` options, e.g. the data converter): only
 * its workflow client skips time while awaiting results.
 */
export async function createTimeSkippingEnv(client?: ClientOptionsForTestEnv): Promise<TestWorkflowEnvironment> {
  const path = resolveTool('temporalTestServer');
  let env: TestWorkflowEnvironment | undefined;
  // The SDK gives the (Java) server a fixed 5 s to start; on a busy 2-core machine that is
  // occasionally not enough, so a start that timed out is tried again.
  for (let attempt = 1; env === undefined; attempt += 1) {
    try {
      env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } }, client });
    } catch (err) {
      if (attempt >= 3 || !/did not start|timed? ?out/i.test(String((err as Error)?.message))) throw err;
    }
  }
  // The test server knows only Temporal's built-in search attributes until told about ours.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.entries(SEARCH_ATTRIBUTE_TYPES).map(([name, type]) => [name, INDEXED[type]!])),
  });
  return env;
}
