/**
 * The production Temporal server (src/dev/temporal-server.ts): Temporal's own server, built by
 * `npm run setup` at the version the Compose file runs, on PostgreSQL with SQL visibility; the schema
 * and namespace steps are the scripts Compose runs, and they are safe to re-run on existing databases.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../../src/contracts';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalServer, temporalServerDir, temporalServerKind, type TemporalServer } from '../../src/dev/temporal-server';
import { visibilityRows } from '../helpers/temporal-visibility';

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
    expect(await visibilityRows(postgres.url, 'production-server-1')).toBe(1);
  });

  it('restarts on the same databases: the schema and namespace steps run again and change nothing, the workflow is still there', async () => {
    await server!.stop();
    server = await startTemporalServer({ postgres });
    await withClient(async (client) => {
      const description = await client.workflow.getHandle('production-server-1').describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.searchAttributes.PracticeId).toEqual(['practice-1']);
    });
    expect(await visibilityRows(postgres.url, 'production-server-1')).toBe(1);
  });

  it('without `npm run setup`, says what is missing and how to install it', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-temporal-server-'));
    const saved = process.env.TEMPORAL_SERVER_DIR;
    process.env.TEMPORAL_SERVER_DIR = empty;
    try {
      expect(() => temporalServerDir()).toThrow(/lacks temporal-server: run `npm run setup` \(scripts\/setup.sh builds it\), or set TEMPORAL_SERVER_DIR/);
    } finally {
      if (saved === undefined) delete process.env.TEMPORAL_SERVER_DIR;
      else process.env.TEMPORAL_SERVER_DIR = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('says how to choose the server for a suite, and refuses anything else without echoing it', () => {
    expect(temporalServerKind({})).toBe('dev');
    expect(temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'postgres' })).toBe('postgres');
    expect(() => temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'cassandra-secret' })).toThrow(/^CALL_CAMPAIGNS_TEMPORAL_SERVER: must be `dev`.*or `postgres`/);
    expect(() => temporalServerKind({ CALL_CAMPAIGNS_TEMPORAL_SERVER: 'cassandra-secret' })).not.toThrow(/cassandra-secret/);
  });
});
