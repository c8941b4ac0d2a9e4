/** docker-compose.yml, validated by compose-go (Docker Compose v2's parser), built by `npm run setup`. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { resolveTool } from '../src/dev/tools';

const run = promisify(execFile);
const file = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
const check = (path: string, ...env: string[]) => run(resolveTool('composeCheck'), [...env.flatMap((e) => ['-env', e]), path]);

describe('docker-compose.yml', () => {
  it('is a valid Compose project with the production services', async () => {
    const { stdout } = await check(file, 'POSTGRES_PASSWORD=example', 'LIVEKIT_API_KEY=APIexample', 'LIVEKIT_API_SECRET=example-secret');
    const services = /services (\S+)/.exec(stdout)![1]!.split(',').sort();
    expect(services).toEqual(['agent', 'codec-server', 'livekit', 'livekit-sip', 'postgresql', 'redis', 'temporal', 'temporal-search-attributes', 'temporal-ui', 'worker']);
  });

  it('refuses to start without the database password and LiveKit keys (no default credentials)', async () => {
    await expect(check(file)).rejects.toThrow(/required variable POSTGRES_PASSWORD is missing/);
    await expect(check(file, 'POSTGRES_PASSWORD=example')).rejects.toThrow(/required variable LIVEKIT_API_KEY is missing/);
  });

  it('holds no literal secrets', () => {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/(SECRET|PASSWORD|KEY)\s*[:=]\s*["']?[A-Za-z0-9+/]{8,}/);
  });

  it('the checker catches a broken file (it is a real parser)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      const broken = join(dir, 'docker-compose.yml');
      writeFileSync(broken, 'services:\n  worker:\n    image: node:20\n    depends_on: [nowhere]\n');
      await expect(check(broken)).rejects.toThrow(/nowhere/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
