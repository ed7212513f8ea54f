import { randomUUID } from 'node:crypto';
import type { ReplayJobProgress, ReplayJobView } from '@ingest/contracts';
import type { ShadowTableName } from '@ingest/storage';
import type { ReplaySummary } from './execute.ts';
import type { ReplayPlan } from './plan.ts';
import type { ResolvedRange } from './resolve.ts';

export type JobKind = ReplayJobView['kind'];
export type JobState = ReplayJobView['state'];
export type JobProgress = ReplayJobProgress;
export type JobView = ReplayJobView<ShadowTableName, ResolvedRange>;

/** Refused because another replay, promote or drop holds the shadow table. */
export class JobBusyError extends Error {
  constructor(readonly holder: string) {
    super(`another shadow operation is in progress (${holder}); wait for it, or cancel it with ingestctl replay --cancel <job>`);
    this.name = 'JobBusyError';
  }
}

export interface JobContext {
  readonly id: string;
  readonly signal: AbortSignal;
  progress(done: number): void;
  totals(t: NonNullable<JobView['totals']>): void;
}

export interface JobOutcome {
  plan?: ReplayPlan;
  summary?: ReplaySummary;
  /** A summary with status failed/cancelled still counts as the job's end state. */
  state?: JobState;
  error?: string;
}

interface Job {
  view: JobView;
  started: number;
  abort: AbortController;
  finished: Promise<void>;
}

/** Finished jobs kept for `GET`; older ones are in the audit log. */
const KEEP_FINISHED = 20;

/**
 * One shadow operation at a time per sink writer: two replays into one shadow table would race
 * their duplicate checks, and a drop or promote under a running replay would make its counts lie.
 * Jobs live in memory; a restart forgets them, and a re-run is safe because replay is idempotent.
 */
export class ReplayJobs {
  private holder: string | undefined;
  private active: Job | undefined;
  private readonly finished: Job[] = [];
  private closing: Promise<void> | undefined;

  /** Takes the one slot or throws JobBusyError; the caller releases it or turns it into a job. */
  reserve(what: string): { release(): void; start(kind: JobKind, who: string, resolved: ResolvedRange, work: (ctx: JobContext) => Promise<JobOutcome>): JobView } {
    if (this.closing) throw new JobBusyError('the sink writer is shutting down');
    if (this.holder !== undefined) throw new JobBusyError(this.holder);
    this.holder = what;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.holder = undefined;
    };
    return {
      release,
      start: (kind, who, resolved, work) => {
        const id = randomUUID();
        const started = Date.now();
        const view: JobView = {
          id,
          kind,
          state: 'running',
          who,
          progress: { done: 0, total: resolved.offsets, startedAt: new Date(started).toISOString(), rate: 0 },
          resolved,
        };
        this.holder = `${kind} job ${id} started by ${who}`;
        const abort = new AbortController();
        const ctx: JobContext = {
          id,
          signal: abort.signal,
          progress: (done) => {
            view.progress.done = done;
            view.progress.rate = Math.round((done * 1000) / Math.max(1, Date.now() - started));
          },
          totals: (t) => {
            view.totals = t;
          },
        };
        const job: Job = { view, started, abort, finished: Promise.resolve() };
        this.active = job;
        // The job's promise never rejects: its failure is its state, read through GET.
        job.finished = work(ctx).then(
          (out) => {
            if (out.plan) view.plan = out.plan;
            if (out.summary) view.summary = out.summary;
            view.state = out.state ?? 'done';
            if (out.error !== undefined) view.error = out.error;
          },
          (e: unknown) => {
            view.state = abort.signal.aborted ? 'cancelled' : 'failed';
            view.error = (e as Error).message;
          },
        ).finally(() => {
          view.finishedAt = new Date().toISOString();
          this.active = undefined;
          this.finished.unshift(job);
          this.finished.length = Math.min(this.finished.length, KEEP_FINISHED);
          release();
        });
        return view;
      },
    };
  }

  /** Runs `fn` holding the slot (promote, drop). */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const slot = this.reserve(what);
    try {
      return await fn();
    } finally {
      slot.release();
    }
  }

  get(id: string): JobView | undefined {
    if (this.active?.view.id === id) return this.active.view;
    return this.finished.find((j) => j.view.id === id)?.view;
  }

  list(): JobView[] {
    return [...(this.active ? [this.active.view] : []), ...this.finished.map((j) => j.view)];
  }

  /** Asks the job to stop after its current chunk; returns its view, or undefined if unknown. */
  cancel(id: string): JobView | undefined {
    if (this.active?.view.id === id) this.active.abort.abort();
    return this.get(id);
  }

  /** Stops the running job (after its chunk) and waits for it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const a = this.active;
      if (!a) return;
      a.abort.abort();
      await a.finished;
    })();
    return this.closing;
  }
}
