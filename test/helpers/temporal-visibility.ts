/** What the production Temporal server recorded in its SQL visibility database (PostgreSQL). */
import pg from 'pg';

/** Visibility rows of workflows whose id starts with `prefix`, in the server's `temporal_visibility` database. */
export async function visibilityRows(postgresUrl: string, prefix: string): Promise<number> {
  const url = new URL(postgresUrl);
  url.pathname = '/temporal_visibility';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM executions_visibility WHERE starts_with(workflow_id, $1)', [prefix]);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}
