/**
 * A cache of start-up work that depends only on the code installed: the workflow bundle (webpack,
 * ~5 s and ~8 s of CPU) and an empty embedded database (PGlite's initdb, ~2 s and ~3.5 s of CPU).
 * The forecast pays both at every run; with the cache it pays them once per install and code
 * change. Entries live in `node_modules/.cache/call-campaigns/` (gone with `npm ci`), are named by
 * a hash of everything they were made from, and are written atomically; an entry that cannot be
 * read or written is simply made again (the cache only ever saves time).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The cache's directory. */
export const START_CACHE_DIR = fileURLToPath(new URL('../node_modules/.cache/call-campaigns/start', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every file under `dir` (recursively), sorted, skipping `node_modules` and dot-directories. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

/**
 * A hash of the named project directories' and files' contents (paths relative to the project) and
 * of `extra` strings (versions): the name of a cache entry made from them.
 */
export function sourceKey(paths: readonly string[], extra: readonly string[] = [], root = PROJECT_ROOT): string {
  const hash = createHash('sha256');
  for (const p of paths) {
    const full = join(root, p);
    const files = statSync(full, { throwIfNoEntry: false })?.isDirectory() ? filesUnder(full) : [full];
    for (const file of files) {
      hash.update(file.slice(root.length)).update('\0');
      try {
        hash.update(readFileSync(file)).update('\0');
      } catch {
        hash.update('(missing)\0');
      }
    }
  }
  for (const e of extra) hash.update(e).update('\0');
  return hash.digest('hex').slice(0, 24);
}

/** The entry `<kind>-<key><ext>`, or undefined when there is none (or it cannot be read). */
export function readStartCache(kind: string, key: string, ext: string, dir = START_CACHE_DIR): Buffer | undefined {
  try {
    return readFileSync(join(dir, `${kind}-${key}${ext}`));
  } catch {
    return undefined;
  }
}

/** Writes the entry atomically and removes the kind's older entries; failures are ignored. */
export function writeStartCache(kind: string, key: string, ext: string, data: string | Uint8Array, dir = START_CACHE_DIR): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const name = `${kind}-${key}${ext}`;
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, join(dir, name));
    for (const other of readdirSync(dir)) {
      if (other !== name && other.startsWith(`${kind}-`) && other.endsWith(ext)) rmSync(join(dir, other), { force: true });
    }
  } catch {
    // A read-only or full disk: the next run makes it again.
  }
}

/** A package's installed version (for cache keys). */
export function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}
