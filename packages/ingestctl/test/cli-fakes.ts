import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { runCli } from '../src/main.ts';

export interface FakeAnswer {
  status: number;
  body: unknown;
}

export interface FakeServer {
  url: string;
  /** Requests seen, as "METHOD /path?query". */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A real HTTP server standing in for a service ingestctl talks to: `answer` gets "METHOD /path"
 * (no query) and the parsed URL and returns what to send; undefined is a 404.
 */
export async function fakeServer(answer: (route: string, url: URL) => FakeAnswer | undefined): Promise<FakeServer> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    seen.push(`${req.method} ${url.pathname}${url.search}`);
    // Drain the body before answering so the client never sees a reset.
    req.resume();
    req.on('end', () => {
      const a = answer(`${req.method} ${url.pathname}`, url) ?? { status: 404, body: { error: { code: 'NOT_FOUND', message: 'not found' } } };
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on: connection refused at once. */
export const DEAD_URL = 'http://127.0.0.1:9';

export async function ctl(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

export type FakeLegacy = { configured: false } | { configured: true; reachable: boolean };

/**
 * An edge's GET /status as ingestctl reads it: the generation of the set file it "runs" (read from
 * the file on every request, so a change is seen at once) and its view of legacy.
 */
export function fakeEdge(cutoverFile: string, legacy: FakeLegacy): Promise<FakeServer> {
  return fakeServer((route) => {
    if (route !== 'GET /status') return undefined;
    let doc: { generation: number; tenants: Record<string, unknown> } = { generation: 0, tenants: {} };
    try {
      doc = JSON.parse(readFileSync(cutoverFile, 'utf8')) as typeof doc;
    } catch {
      // No file yet: generation 0, nobody cut over.
    }
    const view = legacy.configured
      ? { configured: true, url: 'http://legacy.invalid/', reachable: legacy.reachable, ...(legacy.reachable ? {} : { error: 'connect ECONNREFUSED' }) }
      : { configured: false, url: null, reachable: null, error: 'LEGACY_URL is not set' };
    return { status: 200, body: { service: 'edge', cutover: { enforcing: legacy.configured || Object.keys(doc.tenants).length > 0, generation: doc.generation, legacy: view } } };
  });
}
