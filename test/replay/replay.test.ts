/**
 * Replays every committed history (test/histories/*.json) against the current workflow code.
 * A change that breaks a running confirmation fails here before it ships.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows, FAILURE_CONVERTER_PATH } from '../../src/bundle';
import { defaultPayloadConverter } from '@temporalio/common';
import { createDataConverter, EncryptionCodec } from '../../src/codec';
import { parseConfirmationRequest, ValidationError } from '../../src/validation';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const historiesDir = fileURLToPath(new URL('../histories/', import.meta.url));
const dataConverter = createDataConverter(TEST_ENCRYPTION_KEY);
const bundleOf = (file: string) =>
  bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL(file, import.meta.url)), failureConverterPath: FAILURE_CONVERTER_PATH });

let files: string[] = [];
/** The workflow id each history ran under (a campaign checks its own id), by file; written by `npm run record-histories`. */
let ids: Record<string, string> = {};
const idOf = (file: string) => ids[file] ?? file;
let current: WorkflowBundleWithSourceMap;

async function history(file: string) {
  return historyFromJSON(JSON.parse(await readFile(`${historiesDir}${file}`, 'utf8')));
}

beforeAll(async () => {
  files = (await readdir(historiesDir)).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json').sort();
  ids = JSON.parse(await readFile(`${historiesDir}workflow-ids.json`, 'utf8')) as Record<string, string>;
  current = await bundleWorkflows();
});

describe('replay of committed histories', () => {
  it('has the recorded scenarios', () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  it('replays every history with the current workflow code', async () => {
    for (const file of files) {
      await expect(Worker.runReplayHistory({ workflowBundle: current, dataConverter }, await history(file), idOf(file)), file).resolves.toBeUndefined();
    }
  });

  it('the happy path stays within 20 history events', async () => {
    const h = await history('happy-path-confirmed.json');
    expect(h.events?.length).toBeLessThanOrEqual(20);
  });

  it('holds no patient name or phone number in plaintext (payloads are encrypted)', async () => {
    for (const file of files) {
      const text = await readFile(`${historiesDir}${file}`, 'utf8');
      expect(text, file).not.toMatch(/Jordan|Sample|\+1212555|5550\d\d\d/);
    }
  });

  it('an incompatible change fails replay with DeterminismViolationError', async () => {
    const incompatible = await bundleOf('./incompatible-workflows.ts');
    const err = await Worker.runReplayHistory({ workflowBundle: incompatible, dataConverter }, await history('happy-path-confirmed.json')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeterminismViolationError);
  });

  it('the same change guarded by patched() replays every history', async () => {
    const guarded = await bundleOf('./patched-workflows.ts');
    for (const file of files) {
      await expect(Worker.runReplayHistory({ workflowBundle: guarded, dataConverter }, await history(file), idOf(file)), file).resolves.toBeUndefined();
    }
  });
});

describe('replay of runs started before the workflow checked its input', () => {
  it('a run whose request today\'s rules refuse (unknown field, zone and number the data no longer knows, past start) replays as it ran', async () => {
    const codec = EncryptionCodec.fromSetting(TEST_ENCRYPTION_KEY);
    for (const file of ['happy-path-confirmed.json', 'moved-then-expired.json']) {
      const recorded = await history(file);
      const started = recorded.events![0]!.workflowExecutionStartedEventAttributes!;
      const [opened] = await codec.decode([started.input!.payloads![0]!]);
      const request = defaultPayloadConverter.fromPayload<Record<string, unknown>>(opened!);
      // Accepted by the old workflow (it never looked), refused by today's start check.
      const altered = { ...request, legacyNote: 'sent by an old backend', phone: '+15555550123', patientTimeZone: 'Mars/Base', appointmentStart: '2001-01-01T10:00:00Z' };
      expect(() => parseConfirmationRequest(altered, new Date(0))).toThrow(ValidationError);
      const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(altered)]);
      started.input!.payloads![0] = sealed!;
      await expect(Worker.runReplayHistory({ workflowBundle: current, dataConverter }, recorded, idOf(file)), file).resolves.toBeUndefined();
    }
  });
});
