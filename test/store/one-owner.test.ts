/**
 * An embedded (PGlite) data directory has one owner: real processes open the same directory — the
 * first owns it and serves it, the others reach it through the owner, a new owner takes over when
 * the old one dies, and a directory held by a process that does not serve it is refused at once
 * with a sentence saying what to do. Never two writers on one data directory.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsentState } from '../../src/contracts';
import { createStore, DatabaseInUseError, type SqlStore } from '../../src/store';
import { openPglite } from '../../src/store/sql';

const HELPER = join(import.meta.dirname, '../helpers/db-process.ts');

/** A process holding the store on `dir`, driven one command line at a time. */
class Holder {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly pending: ((line: string) => void)[] = [];
  stderr = '';

  constructor(dir: string) {
    // node itself (not the tsx wrapper, which would run node as a child): the pid is the owner's.
    this.child = spawn(process.execPath, ['--import', 'tsx', HELPER, dir], { stdio: 'pipe' });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => this.pending.shift()?.(line));
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`holder did not answer; stderr: ${this.stderr}`)), 60_000);
      this.pending.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    });
  }

  ready(): Promise<Record<string, unknown>> {
    return this.next();
  }

  send(command: string): Promise<Record<string, unknown>> {
    const answer = this.next();
    this.child.stdin.write(`${command}\n`);
    return answer;
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

function dataDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'one-owner-'));
  cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  return join(root, 'pglite');
}

async function holder(dir: string): Promise<Holder> {
  const h = new Holder(dir);
  cleanup.push(() => h.kill());
  expect(await h.ready()).toEqual({ ready: h.child.pid });
  return h;
}

async function store(dir: string): Promise<SqlStore> {
  const s = await createStore({ dataDir: dir, processName: 'test' });
  cleanup.push(() => s.close());
  return s;
}

const lock = (dir: string) => JSON.parse(readFileSync(`${dir}.lock`, 'utf8')) as { pid: number; name: string; socket: string };

describe('one owner per PGlite data directory', () => {
  it('a second process reaches the owner’s database: writes by either are seen by both', async () => {
    const dir = dataDir();
    const owner = await holder(dir);
    expect(lock(dir)).toMatchObject({ pid: owner.child.pid, name: 'test-holder' });
    // This process opens the same directory while the owner runs (before: refused or crashed).
    const client = await store(dir);
    await client.addDoNotCall('+12125550101', 'cli', 'opt-out typed while the worker runs');
    expect(await owner.send('state +12125550101')).toEqual({ state: ConsentState.DO_NOT_CALL });
    expect(await owner.send('dnc +12125550102')).toEqual({ ok: true });
    expect(await client.consentState('p1', '+12125550102')).toBe(ConsentState.DO_NOT_CALL);
    // The socket is the user's alone: it serves health data without a password.
    const { socket } = lock(dir);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(socket, '..')).mode & 0o777).toBe(0o700);
  });

  it('two processes starting at once on a new directory: one owns it, the other waits and connects', async () => {
    const dir = dataDir();
    const [a, b] = await Promise.all([holder(dir), holder(dir)]);
    const ownerPid = lock(dir).pid;
    expect([a.child.pid, b.child.pid]).toContain(ownerPid);
    expect(await a.send('dnc +12125550107')).toEqual({ ok: true });
    expect(await b.send('state +12125550107')).toEqual({ state: ConsentState.DO_NOT_CALL });
  });

  it('transactions from two processes do not interleave: 2 × 15 reservations on one number count 1…30', async () => {
    const dir = dataDir();
    const owner = await holder(dir);
    const client = await store(dir);
    const phone = '+12125550103';
    const mine = Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        client.reserveAttempt({ workflowId: `client-${i}`, attempt: 1, appointmentId: 'A-1', phone, at: new Date(), localDate: '2026-11-30', maxCallsPerDay: 1_000, maxCallsPerWeek: 1_000 }),
      ),
    );
    const theirs = owner.send(`reserve 15 ${phone}`);
    const counts = [...(await mine).map((r) => r.dayCount), ...((await theirs).counts as number[])].sort((a, b) => a - b);
    expect(counts).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('a client’s write waits for the owner’s open transaction and survives its rollback', async () => {
    const dir = dataDir();
    const owner = await store(dir); // this process owns the directory
    const client = await holder(dir);
    let clientAnswered = false;
    const rolledBack = owner.sql
      .transaction(async (tx) => {
        await tx.query(`INSERT INTO do_not_call (phone, reason, source) VALUES ($1, 'x', 'owner')`, ['+12125550105']);
        const write = client.send('dnc +12125550106').then((answer) => ((clientAnswered = true), answer));
        await new Promise((r) => setTimeout(r, 500));
        expect(clientAnswered).toBe(false); // not let in while the owner's transaction is open
        void write;
        throw new Error('roll back');
      })
      .catch((err: Error) => err.message);
    expect(await rolledBack).toBe('roll back');
    await expect.poll(() => clientAnswered, { timeout: 10_000 }).toBe(true);
    expect(await owner.consentState('p1', '+12125550105')).toBe(ConsentState.MISSING);
    expect(await owner.consentState('p1', '+12125550106')).toBe(ConsentState.DO_NOT_CALL);
  });

  it('when the owner dies, the next query makes a survivor the owner, with the data intact', async () => {
    const dir = dataDir();
    const owner = await holder(dir);
    const client = await store(dir);
    await client.addDoNotCall('+12125550104', 'test', 'before the owner died');
    await owner.kill();
    // A query in flight when the owner dies may fail; the next one finds no owner and becomes it.
    let state: ConsentState | undefined;
    for (let tries = 0; tries < 2 && state === undefined; tries += 1) {
      state = await client.consentState('p1', '+12125550104').catch(() => undefined);
    }
    expect(state).toBe(ConsentState.DO_NOT_CALL);
    expect(lock(dir).pid).toBe(process.pid);
    // And a newcomer reaches the new owner.
    const newcomer = await holder(dir);
    expect(await newcomer.send('state +12125550104')).toEqual({ state: ConsentState.DO_NOT_CALL });
    expect(lock(dir).pid).toBe(process.pid);
  });

  it('a directory held by a live process that does not serve it is refused at once, saying what to do', async () => {
    const dir = dataDir();
    // An older version's lock (a bare pid) held by a live process.
    const sleeper = spawn('sleep', ['60']);
    cleanup.push(() => void sleeper.kill('SIGKILL'));
    writeFileSync(`${dir}.lock`, String(sleeper.pid));
    const started = Date.now();
    const err = await openPglite(dir, { waitMs: 10_000 }).then(
      (sql) => sql.close(),
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1_000); // it never will serve: no waiting
    expect(err).toBeInstanceOf(DatabaseInUseError);
    expect((err as Error).message).toMatch(new RegExp(`in use by process ${sleeper.pid}, which does not share it \\(an older version\\); stop that process, or set DATABASE_URL`));
    expect((err as Error).message.split(/[.;]\s/).length).toBeLessThanOrEqual(3);
  });

  it('a stale lock (owner gone, or our own pid after a restart) is taken over', async () => {
    const dir = dataDir();
    writeFileSync(`${dir}.lock`, JSON.stringify({ pid: process.pid, name: 'worker', socket: join(dir, 'gone.sock') }));
    const first = await store(dir);
    expect(lock(dir).pid).toBe(process.pid);
    await first.close();
    writeFileSync(`${dir}.lock`, '2147483646'); // pids this high are never in use
    const second = await store(dir);
    expect(lock(dir)).toMatchObject({ pid: process.pid, name: 'test' });
    await second.close();
  });
});
