import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './main.ts';

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
