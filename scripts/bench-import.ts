/**
 * Import benchmark: a fictional 10,000-row schedule (scripts/make-schedule.ts's generator) checked
 * and imported into a campaign on embedded PGlite (in memory), then imported again (idempotent:
 * nothing added). Prints rows per second for each step.
 *
 *   npx tsx scripts/bench-import.ts [rows=10000]
 */
import { importCsv, validateCsv } from '../src/campaigns/import';
import { makeScheduleText } from '../src/campaigns/sample';
import { createCampaign } from '../src/campaigns/store';
import { createStore } from '../src/store';

const rows = Number(process.argv[2] ?? 10_000);

async function main(): Promise<void> {
  const csv = makeScheduleText({ rows, seed: 42 });
  const practice = { practiceId: 'bench', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' };
  const store = await createStore({});
  try {
    await createCampaign(store.sql, { ...practice, campaignId: 'bench-import' });
    const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} rows/s`;

    let t = performance.now();
    const checked = await validateCsv(csv, practice);
    const checkMs = performance.now() - t;

    t = performance.now();
    const first = await importCsv(store.sql, { practiceId: 'bench', campaignId: 'bench-import' }, csv);
    const importMs = performance.now() - t;

    t = performance.now();
    const again = await importCsv(store.sql, { practiceId: 'bench', campaignId: 'bench-import' }, csv);
    const againMs = performance.now() - t;

    if (checked.valid !== rows || first.added !== rows || again.added !== 0) {
      throw new Error(`unexpected counts: valid ${checked.valid}, added ${first.added}, re-import added ${again.added} (of ${rows})`);
    }
    const rss = Math.round(process.memoryUsage().rss / 1024 / 1024);
    console.log(`import bench (PGlite in memory, ${rows.toLocaleString('en-US')} rows, ${(csv.length / 1024 / 1024).toFixed(1)} MB CSV):`);
    console.log(`  check only:   ${(checkMs / 1000).toFixed(2)} s  ${rate(rows, checkMs)}`);
    console.log(`  import:       ${(importMs / 1000).toFixed(2)} s  ${rate(rows, importMs)}  (${first.added} added)`);
    console.log(`  re-import:    ${(againMs / 1000).toFixed(2)} s  ${rate(rows, againMs)}  (${again.added} added, ${again.alreadyImported} already imported)`);
    console.log(`  process RSS:  ${rss} MB`);
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
