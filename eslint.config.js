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
              group: ['**/src/*', '!**/src/contracts'],
              allowTypeImports: true,
              message: 'Workflows may import values only from src/contracts (the Node-free shared module).',
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
);
