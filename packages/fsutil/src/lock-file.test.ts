import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLockFile, LockHeldError } from './lock-file.ts';

let dir: string;
let lock: string;
const children: ChildProcess[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fsutil-lock-'));
  lock = join(dir, 'LOCK');
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that ran and exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** A live process other than this one. */
function livePid(): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const CONTENDER = join(import.meta.dirname, '..', 'test', 'lock-contender.ts');

/** A child process racing for `file` (test/lock-contender.ts); next() is its next output line. */
function contender(file: string): { child: ChildProcess; next: () => Promise<string>; exited: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CONTENDER, file], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (l) => (waiting.length > 0 ? waiting.shift()!(l) : queue.push(l)));
  return {
    child,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))),
    exited: new Promise((r) => child.once('exit', () => r())),
  };
}

describe('acquireLockFile', () => {
  it('writes this pid, refuses a second holder in this process, and lets go on release', async () => {
    const first = await acquireLockFile(lock);
    expect(first.tookOver).toBe(false);
    expect(await readFile(lock, 'utf8')).toBe(`${process.pid}\n`);
    const err = await acquireLockFile(lock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as LockHeldError).holder).toBe(process.pid);
    await first.release();
    await first.release();
    expect(await readdir(dir)).toEqual([]);
    const again = await acquireLockFile(lock);
    await again.release();
  });

  it('refuses while another live process holds it, naming that pid', async () => {
    const pid = livePid();
    await writeFile(lock, `${pid}\n`);
    const err = await acquireLockFile(lock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as LockHeldError).holder).toBe(pid);
    expect((err as Error).message).toContain(`running process ${pid}`);
    expect(await readFile(lock, 'utf8')).toBe(`${pid}\n`);
    expect(await readdir(dir)).toEqual(['LOCK']);
  });

  it('takes over the lock of a process that no longer runs, and one with no pid in it', async () => {
    await writeFile(lock, `${deadPid()}\n`);
    const a = await acquireLockFile(lock);
    expect(a.tookOver).toBe(true);
    expect(await readFile(lock, 'utf8')).toBe(`${process.pid}\n`);
    await a.release();

    await writeFile(lock, '');
    const b = await acquireLockFile(lock);
    expect(b.tookOver).toBe(true);
    await b.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock naming this pid that this process does not hold (a restart with the same pid)', async () => {
    await writeFile(lock, `${process.pid}\n`);
    const l = await acquireLockFile(lock);
    expect(l.tookOver).toBe(true);
    await l.release();
  });

  it('of concurrent acquires in one process exactly one wins', async () => {
    const got = await Promise.allSettled(Array.from({ length: 8 }, () => acquireLockFile(lock)));
    const won = got.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of got) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockHeldError);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLockFile>>>).value.release();
  });

  it('with waitMs, waits for the holder to let go; refuses once waitMs has passed', async () => {
    const first = await acquireLockFile(lock);
    const waiting = acquireLockFile(lock, { waitMs: 30_000, pollMs: 5 });
    await first.release();
    const second = await waiting;
    expect(await readFile(lock, 'utf8')).toBe(`${process.pid}\n`);

    const started = Date.now();
    await expect(acquireLockFile(lock, { waitMs: 60, pollMs: 5 })).rejects.toBeInstanceOf(LockHeldError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    await second.release();
  });

  it('of processes racing for a dead owner\'s lock, exactly one takes it', async () => {
    const stale = deadPid();
    await writeFile(lock, `${stale}\n`);
    const contenders = Array.from({ length: 5 }, () => contender(lock));
    await Promise.all(contenders.map((c) => c.next()));
    for (const c of contenders) c.child.stdin!.write('go\n');
    const results = await Promise.all(contenders.map((c) => c.next()));
    expect([...results].sort()).toEqual(['refused', 'refused', 'refused', 'refused', 'won']);
    const winner = contenders[results.indexOf('won')]!;
    expect(await readFile(lock, 'utf8')).toBe(`${winner.child.pid}\n`);
    for (const c of contenders) c.child.stdin!.end();
    await Promise.all(contenders.map((c) => c.exited));
    expect(await readdir(dir)).toEqual([]);
  });

  it('release leaves alone a lock file that names someone else', async () => {
    const l = await acquireLockFile(lock);
    const pid = livePid();
    await writeFile(lock, `${pid}\n`);
    await l.release();
    expect(await readFile(lock, 'utf8')).toBe(`${pid}\n`);
  });
});
