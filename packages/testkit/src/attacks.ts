import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { ROUTES, type IngestResult } from '@ingest/contracts';

/**
 * Attack tools for the edge's slow-and-many-connections tests (raw sockets, so nothing in an HTTP
 * client smooths the attack out), and a quiet client that measures what a bystander sees during
 * one. Every tool is bounded by its caller: a count, and stop()/destroy().
 */

export interface Target {
  host: string;
  port: number;
}

export function targetOf(url: string): Target {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** The first status line a raw socket received, or undefined before any. */
function statusOf(text: string): number | undefined {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export interface RawOutcome {
  /** The status the server answered with, or undefined when it closed without a word. */
  status: number | undefined;
  /** The raw response text received (headers and body), for codes and headers. */
  response: string;
  /** ms from the start to the close. */
  elapsedMs: number;
}

export interface SlowUpload {
  /** Settles when the server answers and/or closes the connection. */
  readonly done: Promise<RawOutcome>;
  /** True once the server has answered or closed. */
  readonly settled: boolean;
  readonly bytesSent: number;
  stop(): void;
}

export interface SlowUploadOptions {
  apiKey: string;
  path?: string;
  /** Declared Content-Length; omitted: chunked transfer encoding. */
  contentLength?: number;
  /** Bytes written per tick and the tick (a trickle: 1 byte per 100 ms by default). */
  bytesPerTick?: number;
  tickMs?: number;
  /** Bytes written at once right after the headers. */
  initialBytes?: number;
  localAddress?: string;
}

/** A POST whose body trickles and never ends by itself (slow upload / R.U.D.Y.). */
export function slowUpload(t: Target, o: SlowUploadOptions): SlowUpload {
  const started = performance.now();
  const socket = connect({ host: t.host, port: t.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
  const chunked = o.contentLength === undefined;
  let sent = 0;
  let settled = false;
  let response = '';
  let timer: NodeJS.Timeout | undefined;
  const writeBody = (n: number) => {
    if (n <= 0 || socket.destroyed || !socket.writable) return;
    const data = '['.padEnd(n, ' ').slice(0, n);
    socket.write(chunked ? `${n.toString(16)}\r\n${data}\r\n` : data);
    sent += n;
  };
  const done = new Promise<RawOutcome>((resolve) => {
    socket.on('data', (d: Buffer) => {
      response += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      settled = true;
      if (timer) clearInterval(timer);
      resolve({ status: statusOf(response), response, elapsedMs: performance.now() - started });
    });
  });
  socket.once('connect', () => {
    const head = [
      `POST ${o.path ?? '/v2/ingest'} HTTP/1.1`,
      `host: ${t.host}:${t.port}`,
      `authorization: Bearer ${o.apiKey}`,
      'content-type: application/json',
      chunked ? 'transfer-encoding: chunked' : `content-length: ${o.contentLength}`,
      '',
      '',
    ].join('\r\n');
    socket.write(head);
    writeBody(o.initialBytes ?? 1);
    timer = setInterval(() => {
      // A server answer means the upload is over for it; keep the socket until it closes it.
      if (response !== '') return;
      writeBody(o.bytesPerTick ?? 1);
    }, o.tickMs ?? 100);
  });
  return {
    done,
    get settled() {
      return settled;
    },
    get bytesSent() {
      return sent;
    },
    stop() {
      if (timer) clearInterval(timer);
      socket.destroy();
    },
  };
}

export interface ConnectionFlood {
  readonly sockets: readonly Socket[];
  /** Connections the server has closed so far. */
  readonly closed: number;
  /** Resolves when at least `n` were closed by the server; rejects after `timeoutMs`. */
  whenClosed(n: number, timeoutMs: number): Promise<void>;
  destroy(): void;
}

export interface FloodOptions {
  localAddress?: string;
  /** Sent right after connecting and then nothing more (slowloris: partial headers); none: idle. */
  preamble?: string;
  /** With a preamble: one more header line every tickMs, never the blank line that ends them. */
  tickMs?: number;
}

/**
 * Opens `n` connections that never complete a request: idle ones (connect and say nothing) or,
 * with a preamble and tickMs, slowloris ones (headers that never end). Resolves once every
 * connection has either connected or been refused, so the flood is fully in place.
 */
export async function connectionFlood(t: Target, n: number, o: FloodOptions = {}): Promise<ConnectionFlood> {
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let closed = 0;
  const waiters = new Set<() => void>();
  const opened = Array.from({ length: n }, () => {
    const s = connect({ host: t.host, port: t.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    sockets.push(s);
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    return new Promise<void>((resolve) => {
      s.once('connect', () => {
        if (o.preamble) {
          s.write(o.preamble);
          if (o.tickMs) {
            let i = 0;
            const iv = setInterval(() => s.writable && s.write(`x-slow-${i++}: 1\r\n`), o.tickMs);
            timers.push(iv);
            s.once('close', () => clearInterval(iv));
          }
        }
        resolve();
      });
      s.once('close', () => {
        closed++;
        for (const w of waiters) w();
        resolve();
      });
    });
  });
  await Promise.all(opened);
  return {
    sockets,
    get closed() {
      return closed;
    },
    whenClosed(count, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (closed < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${closed} of ${count} connections closed by the server within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    destroy() {
      for (const iv of timers) clearInterval(iv);
      for (const s of sockets) s.destroy();
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** One request through `agent` (keep-alive, optionally bound to a local address); never rejects on a status. */
export function send(t: Target, agent: Agent, o: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: t.host, port: t.port, method: o.method ?? 'GET', path: o.path, headers: o.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(o.body);
  });
}

/** A keep-alive agent, bound to a local address (127.0.0.x) so tests can play several clients. */
export function clientAgent(localAddress?: string): Agent {
  return new Agent({ keepAlive: true, maxSockets: 8, ...(localAddress ? { localAddress } : {}) });
}

export interface QuietReport {
  requests: number;
  ok: number;
  successRate: number;
  p50Ms: number;
  p99Ms: number;
  statuses: Record<string, number>;
}

/**
 * The bystander: `requests` small valid batches, one after another (a fixed count, not a rate,
 * so the result does not depend on how fast a busy machine is). A refused or failed connection
 * counts as a failure, not an exception.
 */
export async function quietTenant(t: Target, apiKey: string, requests: number, o: { localAddress?: string; during?: () => boolean } = {}): Promise<QuietReport> {
  const agent = clientAgent(o.localAddress);
  const times: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  try {
    for (let i = 0; i < requests; i++) {
      const started = performance.now();
      let status: string;
      try {
        const body = JSON.stringify([{ type: 'log', timestamp: Date.now(), app: 'quiet', data: { level: 'info', message: `quiet ${i}` } }]);
        const r = await send(t, agent, { method: 'POST', path: '/v2/ingest', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body });
        status = String(r.status);
        if (r.status === 200) ok++;
      } catch (e) {
        status = (e as NodeJS.ErrnoException).code ?? 'error';
      }
      times.push(performance.now() - started);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  } finally {
    agent.destroy();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
  return { requests, ok, successRate: requests === 0 ? 1 : ok / requests, p50Ms: pct(0.5), p99Ms: pct(0.99), statuses };
}

export function formatQuiet(label: string, r: QuietReport): string {
  return `${label}: quiet tenant ${r.ok}/${r.requests} ok (${(r.successRate * 100).toFixed(1)}%), p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, statuses ${JSON.stringify(r.statuses)}`;
}

/** A normalizer stand-in that accepts everything at once: edge tests measure the edge alone. */
export async function startFakeNormalizer(): Promise<{ url: string; close(): Promise<void> }> {
  const app: FastifyInstance = Fastify();
  app.post(ROUTES.normalize, async (req): Promise<IngestResult> => ({ accepted: (req.body as { entries: unknown[] }).entries.length, rejected: [] }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}
