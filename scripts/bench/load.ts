/**
 * The two load phases: closed loop (every connection sends its next request as soon as the last is
 * answered: the most the system takes) and open loop (requests start on a fixed schedule whatever
 * the answers do: latency at a chosen rate, without the closed loop's coordinated omission).
 */
import type { Pool } from 'undici';
import { WORKLOAD, type RequestBodies } from './workload.ts';

export interface PhaseResult {
  seconds: number;
  requests: number;
  /** Entries the system said it accepted (`accepted` of each 2xx answer). */
  entries: number;
  /** Answers other than 2xx. */
  errors: number;
  firstError?: string;
  /** Open loop only: requests not started because too many were already waiting. */
  skipped: number;
  latenciesMs: number[];
}

interface Target {
  pool: Pool;
  bodies: RequestBodies;
  headers: Record<string, string>;
}

async function send(t: Target, r: PhaseResult): Promise<void> {
  const res = await t.pool.request({ path: WORKLOAD.path, method: 'POST', headers: t.headers, body: t.bodies.next() });
  const text = await res.body.text();
  r.requests++;
  if (res.statusCode >= 200 && res.statusCode < 300) {
    r.entries += (JSON.parse(text) as { accepted?: number }).accepted ?? 0;
  } else {
    r.errors++;
    r.firstError ??= `${res.statusCode} ${text.slice(0, 300)}`;
  }
}

function empty(): PhaseResult {
  return { seconds: 0, requests: 0, entries: 0, errors: 0, skipped: 0, latenciesMs: [] };
}

/** `connections` senders for `seconds`; each waits for its answer before sending again. */
export async function closedLoop(t: Target, o: { seconds: number; connections: number; onTick?: (r: PhaseResult) => void }): Promise<PhaseResult> {
  const r = empty();
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  const tick = o.onTick ? setInterval(() => o.onTick?.({ ...r, seconds: (performance.now() - t0) / 1000 }), 1000) : undefined;
  try {
    await Promise.all(
      Array.from({ length: o.connections }, async () => {
        while (performance.now() < deadline) {
          const s = performance.now();
          await send(t, r);
          r.latenciesMs.push(performance.now() - s);
        }
      }),
    );
  } finally {
    clearInterval(tick);
  }
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}

/**
 * Starts `requestsPerSecond` requests a second for `seconds`, each timed from when it was due, so
 * a system that falls behind shows it in its latency. At most `maxWaiting` requests wait at once;
 * beyond that a due request is counted as skipped rather than queued without bound.
 */
export async function openLoop(t: Target, o: { seconds: number; requestsPerSecond: number; maxWaiting: number; onTick?: (r: PhaseResult) => void }): Promise<PhaseResult> {
  const r = empty();
  const interval = 1000 / o.requestsPerSecond;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  const waiting = new Set<Promise<void>>();
  const failures: unknown[] = [];
  let lastTick = t0;
  for (let i = 0; ; i++) {
    const due = t0 + i * interval;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    if (failures.length > 0) break;
    if (o.onTick && performance.now() - lastTick >= 1000) {
      lastTick = performance.now();
      o.onTick({ ...r, seconds: (lastTick - t0) / 1000 });
    }
    if (waiting.size >= o.maxWaiting) {
      r.skipped++;
      continue;
    }
    const p: Promise<void> = send(t, r).then(
      () => {
        r.latenciesMs.push(performance.now() - due);
        waiting.delete(p);
      },
      (e: unknown) => {
        failures.push(e);
        waiting.delete(p);
      },
    );
    waiting.add(p);
  }
  await Promise.all(waiting);
  if (failures.length > 0) throw failures[0];
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}
