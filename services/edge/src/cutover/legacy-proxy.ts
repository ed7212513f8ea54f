import http from 'node:http';
import https from 'node:https';
import type { FastifyRequest } from 'fastify';
import { ingestError } from '@ingest/contracts';

export interface LegacyProxyOptions {
  /** Whole exchange, connect to last response byte. */
  timeoutMs: number;
  /** Requests forwarded at once; one more is shed with 503 rather than queued without bound. */
  maxInflight: number;
  /** Request body bytes as received (compressed or not); the legacy pipeline applies its own limits too. */
  maxBodyBytes: number;
  /** Legacy answers are small JSON; a bigger one is cut off rather than buffered without bound. */
  maxResponseBytes?: number;
}

export interface LegacyAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

export interface LegacyHealth {
  reachable: boolean;
  status?: number;
  error?: string;
  checkedAt: string;
}

/** Connection-scoped headers, and the routing headers the legacy pipeline must never be told about. */
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'x-ingest-version', 'x-ingest-mirror']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'trailer', 'upgrade']);

/**
 * Forwards a request the edge must not take (its tenant is not cut over) to the legacy pipeline,
 * byte for byte, and hands back legacy's answer. It never falls back to the v2 path: a legacy
 * failure is a 503 the producer retries, so a request is taken by exactly one pipeline.
 */
export class LegacyProxy {
  private inflight = 0;
  private closed = false;
  private readonly target: URL;
  private readonly agent: http.Agent;
  private readonly maxResponseBytes: number;

  constructor(url: string, private readonly o: LegacyProxyOptions) {
    this.target = new URL(url);
    if (this.target.protocol !== 'http:' && this.target.protocol !== 'https:') throw new Error(`LEGACY_URL ${url} must be http(s)`);
    this.maxResponseBytes = o.maxResponseBytes ?? 1024 * 1024;
    const AgentClass = this.target.protocol === 'https:' ? https.Agent : http.Agent;
    // Sockets are bounded by the in-flight cap; idle ones are reused rather than reopened per request.
    this.agent = new AgentClass({ keepAlive: true, maxSockets: o.maxInflight, maxFreeSockets: Math.min(64, o.maxInflight) });
  }

  get url(): string {
    return this.target.toString();
  }

  inFlight(): number {
    return this.inflight;
  }

  /**
   * Can this edge reach legacy right now? Any HTTP answer below 500 counts: legacy's routes are
   * not ours to know, and a 404 still proves something is listening. 5xx is what a gateway in
   * front of a dead legacy answers. A fresh connection, so a stale keep-alive socket can't vouch.
   */
  probe(timeoutMs: number): Promise<LegacyHealth> {
    const mod = this.target.protocol === 'https:' ? https : http;
    const path = this.target.pathname.replace(/\/+$/, '') || '/';
    const checkedAt = new Date().toISOString();
    return new Promise((resolve) => {
      const req = mod.get({ protocol: this.target.protocol, hostname: this.target.hostname, port: this.target.port, path, agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status > 0 && status < 500 ? { reachable: true, status, checkedAt } : { reachable: false, status, error: `answered HTTP ${status}`, checkedAt });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => resolve({ reachable: false, error: e.message, checkedAt }));
    });
  }

  async forward(req: FastifyRequest): Promise<LegacyAnswer> {
    if (this.closed) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
    if (this.inflight >= this.o.maxInflight) throw ingestError('INGEST_ERR_EDGE_OVERLOADED', [1], { retryAfterSeconds: 1 });
    this.inflight++;
    try {
      return await this.exchange(req);
    } finally {
      this.inflight--;
    }
  }

  private exchange(req: FastifyRequest): Promise<LegacyAnswer> {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = v;
    const xff = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = xff ? `${String(xff)}, ${req.ip}` : req.ip;
    // Tells legacy (and its logs) this request came the long way, through a stale LB route.
    headers['x-ingest-forwarded-by'] = 'edge';
    const base = this.target.pathname.replace(/\/+$/, '');
    const mod = this.target.protocol === 'https:' ? https : http;

    return new Promise<LegacyAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown, status: 'unavailable' | 'too-large' = 'unavailable') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        up.destroy();
        req.raw.unpipe(up);
        reject(
          status === 'too-large'
            ? ingestError('INGEST_ERR_BODY_TOO_LARGE', [this.o.maxBodyBytes])
            : ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', ['legacy pipeline', 1], { retryAfterSeconds: 1, cause: e }),
        );
      };
      const up = mod.request({
        protocol: this.target.protocol,
        hostname: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: base + req.url,
        headers,
        agent: this.agent,
      });
      const timer = setTimeout(() => fail(new Error(`legacy pipeline did not answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
      timer.unref();

      up.on('error', (e) => fail(e));
      up.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.byteLength;
          if (size > this.maxResponseBytes) {
            res.destroy();
            fail(new Error(`legacy answer over ${this.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (e) => fail(e));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v;
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
      });

      let sent = 0;
      req.raw.on('data', (c: Buffer) => {
        sent += c.byteLength;
        if (sent > this.o.maxBodyBytes) fail(new Error('body too large'), 'too-large');
      });
      // The producer went away mid-body: legacy must not get half a request it could act on.
      req.raw.on('close', () => {
        if (!req.raw.complete) fail(new Error('client closed the request before its body was complete'));
      });
      req.raw.pipe(up);
    });
  }

  /** Idempotent; in-flight exchanges finish or fail on their own timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.agent.destroy();
  }
}
