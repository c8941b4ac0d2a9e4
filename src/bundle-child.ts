/** Bundles the workflows and writes the bundle (JSON) to stdout: see bundleWorkflowsInChildProcess. */
import { bundleWorkflows } from './bundle';

const bundle = await bundleWorkflows();
process.stdout.write(JSON.stringify({ code: bundle.code, sourceMap: bundle.sourceMap }), () => process.exit(0));
