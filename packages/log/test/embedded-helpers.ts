/** Helpers shared by the embedded log's unit tests (real filesystem, one temp dir per test). */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogMessage } from '../src/types.ts';

export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'embedded-log-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** n messages with value `${tag}-${i}` padded to `valueBytes`. */
export function messages(n: number, opts: { key?: (i: number) => string; tag?: string; valueBytes?: number } = {}): LogMessage[] {
  const key = opts.key ?? ((i: number) => `tenant-${i % 5}`);
  const tag = opts.tag ?? 'm';
  return Array.from({ length: n }, (_, i) => ({
    key: key(i),
    value: Buffer.from(`${tag}-${i}`.padEnd(opts.valueBytes ?? 0, '.')),
    headers: { traceparent: `00-${i}`, 'x-ingest-tenant': key(i) },
    timestamp: 1_700_000_000_000 + i,
  }));
}

export interface FileFingerprint {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** Every file under dir with its size, mtime and content hash, plus every directory (as ''). */
export async function fingerprint(dir: string): Promise<Map<string, FileFingerprint | ''>> {
  const out = new Map<string, FileFingerprint | ''>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(p, '');
        await walk(p);
      } else {
        const s = await stat(p);
        out.set(p, { size: s.size, mtimeMs: s.mtimeMs, sha256: createHash('sha256').update(await readFile(p)).digest('hex') });
      }
    }
  };
  await walk(dir);
  return out;
}

export async function segmentFiles(partitionDir: string): Promise<string[]> {
  return (await readdir(partitionDir)).filter((n) => n.endsWith('.log')).sort();
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
