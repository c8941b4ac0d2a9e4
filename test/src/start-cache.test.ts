/**
 * The start-up cache (src/start-cache.ts): an entry is named by a hash of what it was made from, so
 * any change to a source gives a new name (a stale workflow bundle is never used); entries are
 * written whole and replace their older versions; a missing or unwritable cache only costs time.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readStartCache, sourceKey, writeStartCache } from '../../src/start-cache';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'start-cache-'));
  mkdirSync(join(root, 'workflows', 'deep'), { recursive: true });
  writeFileSync(join(root, 'workflows', 'a.ts'), 'export const a = 1;');
  writeFileSync(join(root, 'workflows', 'deep', 'b.ts'), 'export const b = 2;');
  writeFileSync(join(root, 'package-lock.json'), '{}');
});
afterEach(() => {
  chmodSync(root, 0o700);
  rmSync(root, { recursive: true, force: true });
});

describe('start-up cache', () => {
  it('the key changes with any source file (content, a new file, a rename) and with the versions given, and not otherwise', () => {
    const key = () => sourceKey(['workflows', 'package-lock.json'], ['sdk 1.24.0'], root);
    const first = key();
    expect(key()).toBe(first);
    writeFileSync(join(root, 'workflows', 'deep', 'b.ts'), 'export const b = 3;');
    const edited = key();
    expect(edited).not.toBe(first);
    writeFileSync(join(root, 'workflows', 'c.ts'), '');
    const added = key();
    expect(added).not.toBe(edited);
    rmSync(join(root, 'workflows', 'c.ts'));
    writeFileSync(join(root, 'workflows', 'd.ts'), '');
    expect(key()).not.toBe(added);
    writeFileSync(join(root, 'package-lock.json'), '{"lockfileVersion":3}');
    expect(key()).not.toBe(added);
    expect(sourceKey(['workflows', 'package-lock.json'], ['sdk 1.25.0'], root)).not.toBe(key());
  });

  it('writes an entry whole, reads it back, and removes the older entries of its kind only', () => {
    const dir = join(root, 'cache');
    expect(readStartCache('bundle', 'k1', '.json', dir)).toBeUndefined();
    writeStartCache('bundle', 'k1', '.json', '{"code":"1"}', dir);
    writeStartCache('other', 'k1', '.json', 'x', dir);
    expect(readStartCache('bundle', 'k1', '.json', dir)?.toString()).toBe('{"code":"1"}');
    writeStartCache('bundle', 'k2', '.json', '{"code":"2"}', dir);
    expect(readStartCache('bundle', 'k1', '.json', dir)).toBeUndefined();
    expect(readdirSync(dir).sort()).toEqual(['bundle-k2.json', 'other-k1.json']);
  });

  it('a cache that cannot be written is no error (the work is simply done again next time)', () => {
    const dir = join(root, 'locked');
    mkdirSync(dir);
    chmodSync(dir, 0o500);
    expect(() => writeStartCache('bundle', 'k', '.json', '{}', dir)).not.toThrow();
    // Root ignores directory permissions: then the entry is there, which is fine too.
    expect([undefined, '{}']).toContain(readStartCache('bundle', 'k', '.json', dir)?.toString());
  });
});
