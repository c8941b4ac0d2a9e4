// ESLint flat config. The workflow rules enforce Temporal's determinism constraints at lint time:
// workflow code runs in a deterministic sandbox and is replayed, so it may not touch Node, I/O,
// or activity implementations (only their types).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An un-awaited promise in a workflow or activity is a lost error (or a lost command).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code runs in a deterministic sandbox: no Node built-ins (use an activity).' })),
            ...['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing'].map((name) => ({
              name,
              message: 'Workflow code may import only @temporalio/workflow and @temporalio/common from the SDK.',
            })),
          ],
          patterns: [
            {
              group: ['**/activities', '**/activities/**'],
              allowTypeImports: true,
              message: 'Import activities as types only (`import type`) and call them through proxyActivities.',
            },
            {
              group: ['**/src/*', '!**/src/contracts', '!**/src/validation', '!**/src/campaigns', '**/src/campaigns/*', '!**/src/campaigns/progress-line'],
              allowTypeImports: true,
              message: 'Workflows may import values only from src/contracts, src/validation and src/campaigns/progress-line (the Node-free shared modules).',
            },
            { group: ['pg', '@electric-sql/*', 'livekit-server-sdk', '@livekit/*', 'pino', 'luxon'], message: 'No I/O or time-zone libraries in workflow code (use an activity).' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process access in workflow code.' },
        { name: 'require', message: 'No dynamic require in workflow code.' },
        { name: 'fetch', message: 'No network I/O in workflow code (use an activity).' },
        { name: 'setImmediate', message: 'Use sleep() or condition() in workflow code.' },
        { name: 'WeakRef', message: 'Garbage collection is non-deterministic.' },
        { name: 'FinalizationRegistry', message: 'Garbage collection is non-deterministic.' },
      ],
    },
  },
  {
    // Bundled into the workflow sandbox: the same determinism rules as workflow code. Validation may
    // use zod, libphonenumber-js and Luxon's pure parsing (their data ships with the code).
    files: ['src/contracts.ts', 'src/validation.ts', 'src/campaigns/progress-line.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Shared with the workflow sandbox: no Node built-ins.' })),
          patterns: [
            { group: ['./*', '../*', '!./contracts', '!../contracts'], allowTypeImports: true, message: 'Shared with the workflow sandbox: import values only from ./contracts.' },
            { group: ['pg', '@electric-sql/*', 'livekit-server-sdk', '@livekit/*', 'pino', '@temporalio/activity', '@temporalio/client', '@temporalio/worker'], message: 'Shared with the workflow sandbox: no I/O.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Shared with the workflow sandbox: no process access.' },
        { name: 'fetch', message: 'Shared with the workflow sandbox: no network I/O.' },
      ],
    },
  },
);
