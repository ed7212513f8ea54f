import { randomUUID } from 'node:crypto';

export interface PostResult {
  status: number;
  headers: Headers;
  body: { accepted?: number; rejected?: Array<{ index: number; code: string; message: string }>; error?: { code: string; message: string; retryable: boolean } };
}

export async function postIngest(edgeUrl: string, apiKey: string | undefined, payload: unknown, opts: { headers?: Record<string, string>; raw?: Buffer | string; signal?: AbortSignal } = {}): Promise<PostResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (apiKey !== undefined) headers['authorization'] = `Bearer ${apiKey}`;
  const res = await fetch(new URL('/v2/ingest', edgeUrl), { method: 'POST', headers, body: opts.raw ?? JSON.stringify(payload), ...(opts.signal ? { signal: opts.signal } : {}) });
  const text = await res.text();
  let body: PostResult['body'];
  try {
    body = JSON.parse(text) as PostResult['body'];
  } catch {
    body = { error: { code: 'NOT_JSON', message: text.slice(0, 200), retryable: false } };
  }
  return { status: res.status, headers: res.headers, body };
}

/** A valid log entry with a fresh id. */
export function logEntry(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: randomUUID(), type: 'log', timestamp: Date.now(), app: 'e2e', data: { level: 'info', message: `entry ${i}` }, labels: { i: String(i % 10) }, ...extra };
}

export function batchOf(n: number, start = 0): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => logEntry(start + i));
}
