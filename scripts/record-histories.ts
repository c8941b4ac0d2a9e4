/**
 * Records the histories of test/replay/scenarios.ts from real runs on the time-skipping test
 * server into test/histories/<name>.json. Run `npm run record-histories` after a workflow change
 * that is meant to be incompatible (and guard running workflows with `patched()` — see README).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { createHarness } from '../test/helpers/workflow-harness';
import { SCENARIOS } from '../test/replay/scenarios';

const dir = fileURLToPath(new URL('../test/histories/', import.meta.url));

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  await mkdir(dir, { recursive: true });
  // The workflow id of each history: replay runs it under the same id (a campaign checks its own).
  const idsFile = `${dir}workflow-ids.json`;
  const ids = JSON.parse(await readFile(idsFile, 'utf8').catch(() => '{}')) as Record<string, string>;
  const h = await createHarness();
  try {
    for (const scenario of SCENARIOS) {
      if (only.length > 0 && !only.includes(scenario.name)) continue;
      const { events } = await h.withWorker(
        async (ctx) => {
          const workflowId = await scenario.run(h, ctx);
          const history = await ctx.client.workflow.getHandle(workflowId).fetchHistory();
          await writeFile(`${dir}${scenario.name}.json`, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 1)}\n`);
          ids[`${scenario.name}.json`] = workflowId;
          return { events: history.events?.length ?? 0 };
        },
        { rules: scenario.rules, ...(scenario.pacing ? { pacing: scenario.pacing } : {}) },
      );
      process.stdout.write(`recorded ${scenario.name}: ${events} events\n`);
    }
  } finally {
    await writeFile(idsFile, `${JSON.stringify(Object.fromEntries(Object.entries(ids).sort()), null, 1)}\n`);
    await h.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
