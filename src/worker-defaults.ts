/**
 * Memory defaults of the worker (measured with `npm run bench:campaign`: see the README's worker
 * configuration table and "Worker memory"). Kept apart from src/worker-factory.ts so that the
 * configuration can read them without loading the SDK's worker.
 */

/**
 * Workflows kept in the worker's cache: a campaign's outstanding confirmations (300 by default) and
 * the campaign itself stay cached, with room for single confirmations. A workflow not in the cache
 * is replayed from its history at its next task (CPU and server reads, not errors). The SDK's own
 * default is derived from the V8 heap limit (~2,300 on a 4 GB heap).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 500;

/**
 * V8 old-space limit (MB) of each of the worker's threads — the main thread (activities, clients)
 * and the workflow thread — passed to node by `npm run worker` (`WORKER_HEAP_MB`). With node's
 * default (a quarter of the machine's memory, 4 GB here) V8 collects so rarely that the worker's RSS
 * grew past 2 GB; live data in a 300-outstanding campaign is ~100 MB per thread.
 */
export const DEFAULT_WORKER_HEAP_MB = 384;
/**
 * glibc malloc arenas of the worker process (`MALLOC_ARENA_MAX`, set by `npm run worker`). glibc
 * gives each thread that allocates concurrently an arena of its own, up to 8 per core; the SDK's
 * Rust core, V8's helper threads and the workflow thread fill several, and their free space is not
 * returned: the RSS of a 10,000-row campaign crept ~60 MB past what V8 held. Two arenas: measured
 * in the README ("Campaigns: benchmark").
 */
export const DEFAULT_MALLOC_ARENA_MAX = 2;
/** Below this the worker risks running out of heap under a campaign. */
export const MIN_WORKER_HEAP_MB = 192;
