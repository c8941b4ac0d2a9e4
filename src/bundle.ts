/**
 * Where the workflow code and the path-loaded converters live, and how the worker bundles them.
 * Bundling is done once per process (tests: once per suite) and reused by every worker.
 */
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

/** Entry point of the workflow bundle. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Failure converter module, bundled into the sandbox and loaded by clients. */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.ts', import.meta.url));

/** Bundles the workflows with the project's failure converter. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  // webpack's module listing is noise for users; warnings and errors still show.
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('WARN') });
}
