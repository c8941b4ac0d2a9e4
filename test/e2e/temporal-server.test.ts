/**
 * The production Temporal server (src/dev/temporal-server.ts): Temporal's own server, built by
 * `npm run setup` at the version the Compose file runs, on PostgreSQL with SQL visibility; the schema
 * and namespace steps are the scripts Compose runs, and they are safe to re-run on existing databases.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../../src/contracts';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalServer, temporalServerKind, type TemporalServer } from '../../src/dev/temporal-server';

const testedVersion = /^TEMPORAL_SERVER_VERSION=v(\S+)$/m.exec(readFileSync(fileURLToPath(new URL('../../scripts/setup.sh', import.meta.url)), 'utf8'))![1]!;

let postgres: PostgresServer;
let server: TemporalServer | undefined;

beforeAll(async () => {
  postgres = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
  await postgres?.stop();
});

async function withClient<T>(fn: (client: Client, connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: server!.address });
  try {
    return await fn(new Client({ connection, namespace: server!.namespace }), connection);
  } finally {
    await connection.close();
  }
}

/** Rows of the workflow in the visibility database (SQL visibility, not the dev server's SQLite). */
async function visibilityRows(): Promise<number> {
  const client = new pg.Client({ connectionString: postgres.url.replace(/\/postgres$/, '/temporal_visibility') });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM executions_visibility WHERE workflow_id = 'production-server-1'`)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

describe('Temporal server on PostgreSQL', () => {
  it(`runs server ${testedVersion} with the namespace and the project's search attributes, visibility in PostgreSQL`, async () => {
    server = await startTemporalServer({ postgres });
    await withClient(async (client, connection) => {
      expect((await connection.workflowService.getSystemInfo({})).serverVersion).toBe(testedVersion);
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: server!.namespace });
      expect(Object.keys(customAttributes)).toEqual(expect.arrayContaining(Object.keys(SEARCH_ATTRIBUTE_TYPES)));
      // No worker polls this queue: the workflow stays open, which is all this test needs.
      await client.workflow.start('notPolled', {
        taskQueue: 'nobody',
        workflowId: 'production-server-1',
        searchAttributes: { PracticeId: ['practice-1'], NextCallAt: [new Date('2030-01-01T10:00:00Z')] },
      });
      let found: string[] = [];
      for (let i = 0; i < 100 && found.length === 0; i += 1) {
        found = [];
        for await (const w of client.workflow.list({ query: `PracticeId = "practice-1" AND NextCallAt > "2029-12-31T00:00:00Z"` })) found.push(w.workflowId);
        if (found.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(found).toEqual(['production-server-1']);
    });
    expect(await visibilityRows()).toBe(1);
  });

  it('restarts on the same databases: the schema and namespace steps run again and change nothing, the workflow is still there', async () => {
    await server!.stop();
    server = await startTemporalServer({ postgres });
    await withClient(async (client) => {
      const description = await client.workflow.getHandle('production-server-1').describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.searchAttributes.PracticeId).toEqual(['practice-1']);
    });
    expect(await visibilityRows()).toBe(1);
  });

  it('says how to choose the server for a suite, and refuses anything else without echoing it', () => {
    expect(temporalServerKind({})).toBe('dev');
    expect(temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'postgres' })).toBe('postgres');
    expect(() => temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'cassandra-secret' })).toThrow(/^CALL_CAMPAIGNS_TEMPORAL_SERVER: must be `dev`.*or `postgres`/);
    expect(() => temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'cassandra-secret' })).not.toThrow(/cassandra-secret/);
  });
});
