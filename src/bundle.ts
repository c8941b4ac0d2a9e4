/**
 * Where the workflow code and the path-loaded converters live, and how the worker bundles them.
 * Bundling is done once per process (tests: once per suite) and reused by every worker.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { packageVersion, readStartCache, sourceKey, writeStartCache } from './start-cache';

/** Entry point of the workflow bundle. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Failure converter module, bundled into the sandbox and loaded by clients. */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.ts', import.meta.url));
/**
 * Libraries loaded once per workflow thread and shared by its workflows (src/workflow-preload.ts).
 * Without it every cached workflow instantiates luxon, zod and the phone-number metadata anew:
 * ~1.5 MB of heap per workflow instead of ~0.45 MB.
 */
export const WORKFLOW_PRELOAD_PATH = fileURLToPath(new URL('./workflow-preload.ts', import.meta.url));

/** Bundles the workflows with the project's failure converter. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  // webpack's module listing is noise for users; warnings and errors still show.
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    preloadModules: [WORKFLOW_PRELOAD_PATH],
    logger: new DefaultLogger('WARN'),
  });
}

/**
 * {@link bundleWorkflows} in a short-lived child process: webpack's few hundred MB of heap and
 * native memory never enter the worker process (whose resident memory would keep them).
 */
export function bundleWorkflowsInChildProcess(): Promise<WorkflowBundleWithSourceMap> {
  const script = fileURLToPath(new URL('./bundle-child.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    // Its own heap limit: the worker's (WORKER_HEAP_MB, through NODE_OPTIONS) is sized for serving, not for webpack.
    const child = spawn(process.execPath, ['--max-old-space-size=1024', '--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`bundling the workflows failed (the bundler process exited with ${code}; its errors are above)`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WorkflowBundleWithSourceMap);
      } catch (err) {
        reject(new Error('bundling the workflows failed: the bundler process wrote no bundle', { cause: err }));
      }
    });
  });
}

/**
 * {@link bundleWorkflowsInChildProcess}, kept in the start-up cache (./start-cache.ts) under a hash
 * of everything the bundle is made from: the project's workflows/ and src/ (the bundle's sources),
 * package-lock.json (the libraries bundled), tsconfig.json, and the SDK's and Node's versions.
 */
export async function cachedWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  const key = sourceKey(['workflows', 'src', 'package-lock.json', 'tsconfig.json'], [packageVersion('@temporalio/worker'), process.version]);
  const hit = readStartCache('workflow-bundle', key, '.json');
  if (hit) {
    try {
      const bundle = JSON.parse(hit.toString('utf8')) as Partial<WorkflowBundleWithSourceMap>;
      if (typeof bundle.code === 'string' && typeof bundle.sourceMap === 'string') return bundle as WorkflowBundleWithSourceMap;
    } catch {
      // A damaged entry: bundled again below.
    }
  }
  const bundle = await bundleWorkflowsInChildProcess();
  writeStartCache('workflow-bundle', key, '.json', JSON.stringify(bundle));
  return bundle;
}
