import { describe, expect, it } from 'vitest';
import { JobBusyError, ReplayJobs, type JobContext } from './jobs.ts';
import { parseReplayRequest } from './request.ts';
import type { ResolvedRange } from './resolve.ts';

const range: ResolvedRange = {
  topic: 't',
  target: 'telemetry_shadow',
  tenant: undefined,
  ...(() => {
    const r = parseReplayRequest({ from: '0', to: '9' });
    return { from: r.from, to: r.to };
  })(),
  inclusive: 'first and last offsets both included',
  partitions: [],
  offsets: 10,
};

const until = async (f: () => boolean) => {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('replay jobs', () => {
  it('runs one shadow operation at a time and frees the slot when it ends', async () => {
    const jobs = new ReplayJobs();
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const v = jobs.reserve('run').start('run', 'alice', range, async (ctx: JobContext) => {
      ctx.progress(5);
      await gate;
      return {};
    });
    expect(v.state).toBe('running');
    expect(() => jobs.reserve('plan')).toThrow(JobBusyError);
    await expect(jobs.exclusive('promote', async () => 1)).rejects.toThrow(/run job .* started by alice/);
    expect(jobs.get(v.id)?.progress.done).toBe(5);
    finish();
    await until(() => jobs.get(v.id)?.state === 'done');
    expect(jobs.get(v.id)?.finishedAt).toBeDefined();
    expect(await jobs.exclusive('promote', async () => 1)).toBe(1);
  });

  it('a released reservation frees the slot (a request that failed validation)', () => {
    const jobs = new ReplayJobs();
    jobs.reserve('plan').release();
    expect(() => jobs.reserve('plan').release()).not.toThrow();
  });

  it('cancel aborts the job; a failing job reports its error; close is idempotent', async () => {
    const jobs = new ReplayJobs();
    const v = jobs.reserve('run').start('run', 'bob', range, (ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))));
    jobs.cancel(v.id);
    await until(() => jobs.get(v.id)?.state !== 'running');
    expect(jobs.get(v.id)).toMatchObject({ state: 'cancelled', error: 'stopped' });

    const f = jobs.reserve('plan').start('plan', 'bob', range, async () => {
      throw new Error('log unavailable');
    });
    await until(() => jobs.get(f.id)?.state !== 'running');
    expect(jobs.get(f.id)).toMatchObject({ state: 'failed', error: 'log unavailable' });
    expect(jobs.list().map((j) => j.id)).toEqual([f.id, v.id]);

    const slow = jobs.reserve('run').start('run', 'c', range, (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve({ state: 'cancelled' }))));
    await Promise.all([jobs.close(), jobs.close()]);
    expect(jobs.get(slow.id)?.state).toBe('cancelled');
    expect(() => jobs.reserve('x')).toThrow(/shutting down/);
  });
});
