/** The workflow determinism lint rules fire on bad code and stay quiet on good code. */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cwd = fileURLToPath(new URL('..', import.meta.url));

async function lintWorkflow(code: string, file = 'workflows/lint-probe.ts') {
  // The probe is not a file on disk, so type-aware parsing is off for it; the workflow rules are syntactic.
  const eslint = new ESLint({
    cwd,
    overrideConfig: [{ languageOptions: { parserOptions: { projectService: false } }, rules: { '@typescript-eslint/no-floating-promises': 'off' } }],
  });
  const [result] = await eslint.lintText(code, { filePath: `${cwd}${file}` });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('workflow lint rules', () => {
  it('forbid Node built-ins, value imports of activities, client/worker SDK and I/O', async () => {
    const messages = await lintWorkflow(`
      import { readFileSync } from 'node:fs';
      import crypto from 'crypto';
      import { createActivities } from '../activities';
      import { Client } from '@temporalio/client';
      import { Pool } from 'pg';
      import { DateTime } from 'luxon';
      export const x = [readFileSync, crypto, createActivities, Client, Pool, DateTime, process.env.X];
    `);
    const joined = messages.join('\n');
    expect(joined).toMatch(/no-restricted-imports: 'node:fs' import is restricted.*no Node built-ins/);
    expect(joined).toMatch(/'crypto' import is restricted/);
    expect(joined).toMatch(/Import activities as types only/);
    expect(joined).toMatch(/'@temporalio\/client' import is restricted/);
    expect(joined).toMatch(/'pg' import is restricted|No I\/O/);
    expect(joined).toMatch(/luxon.*restricted|No I\/O or time-zone/);
    expect(joined).toMatch(/no-restricted-globals: Unexpected use of 'process'/);
  });

  it('allow type-only imports of activities and values from the contracts', async () => {
    const messages = await lintWorkflow(`
      import { proxyActivities } from '@temporalio/workflow';
      import { CallOutcome } from '../src/contracts';
      import type { ConfirmationActivities } from '../src/contracts';
      import type { createActivities } from '../activities';
      const acts = proxyActivities<ConfirmationActivities>({ startToCloseTimeout: '1m' });
      export type Factory = typeof createActivities;
      export async function wf(): Promise<CallOutcome> {
        await acts.checkCall({ roomName: 'r', ringingTimeoutSeconds: 30 });
        return CallOutcome.CONFIRMED;
      }
    `);
    expect(messages).toEqual([]);
  });

  it('let workflows share the validation module, which itself stays free of Node and I/O', async () => {
    expect(
      await lintWorkflow(`
        import { parseConfirmationRequest } from '../src/validation';
        export const check = parseConfirmationRequest;
      `),
    ).toEqual([]);
    const shared = (
      await lintWorkflow(
        `
        import { readFileSync } from 'node:fs';
        import { Pool } from 'pg';
        import { createLogger } from './logger';
        export const x = [readFileSync, Pool, createLogger, process.env.X];
      `,
        'src/validation.ts',
      )
    ).join('\n');
    expect(shared).toMatch(/'node:fs' import is restricted/);
    expect(shared).toMatch(/'pg' import is restricted/);
    expect(shared).toMatch(/import values only from \.\/contracts/);
    expect(shared).toMatch(/no-restricted-globals: .*'process'/);
  });
});
