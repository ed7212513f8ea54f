/**
 * The worker side of `scripts/bench/worker-pool.ts`: one request body in, the edge's and the
 * normalizer's work on it (the real functions), rows and per-entry rejections out.
 */
import { decodeUtf8, parseEntries } from '../../services/edge/src/body/read-body.ts';
import { normalizeEntry } from '../../services/normalizer/src/rules/index.ts';
import { move, transferableSymbol, valueSymbol } from 'piscina';

export interface ParseTask {
  body: Uint8Array;
  tenant: string;
  receivedAt: number;
  maxBytes: number;
  maxEntries: number;
  maxDepth: number;
  /**
   * strings: the row strings, structured-cloned back to the main thread (which then makes a Buffer
   * of each, as the normalizer does). packed: every row encoded here into one buffer that is
   * transferred, not copied, with the byte length of each row.
   */
  result: 'strings' | 'packed';
}

export interface TaskRejection {
  index: number;
  code: string;
  message: string;
}

export type ParseResult =
  | { kind: 'strings'; rows: string[]; rejected: TaskRejection[]; bigNumbers: boolean }
  | { kind: 'packed'; bytes: Uint8Array; lengths: Uint32Array; rejected: TaskRejection[]; bigNumbers: boolean };

export default function parseAndNormalize(task: ParseTask): ParseResult {
  const buf = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
  const seen = { bigNumber: false };
  const entries = parseEntries(decodeUtf8(buf), 'json', { maxBytes: task.maxBytes, maxEntries: task.maxEntries, maxDepth: task.maxDepth }, seen);
  const ctx = { tenant: task.tenant, receivedAt: task.receivedAt };
  const rows: string[] = [];
  const rejected: TaskRejection[] = [];
  for (let i = 0; i < entries.length; i++) {
    const out = normalizeEntry(entries[i], ctx);
    if (out.ok) rows.push(out.row);
    else rejected.push({ index: i, code: out.code, message: out.message });
  }
  if (task.result === 'strings') return { kind: 'strings', rows, rejected, bigNumbers: seen.bigNumber };
  const lengths = new Uint32Array(rows.length);
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    const n = Buffer.byteLength(rows[i] as string, 'utf8');
    lengths[i] = n;
    total += n;
  }
  // Its own ArrayBuffer (not the shared allocation pool), so it can be transferred.
  const bytes = new Uint8Array(total);
  const view = Buffer.from(bytes.buffer, 0, total);
  let at = 0;
  for (const row of rows) at += view.write(row, at, 'utf8');
  const value: ParseResult = { kind: 'packed', bytes, lengths, rejected, bigNumbers: seen.bigNumber };
  return move({ [transferableSymbol]: [bytes.buffer, lengths.buffer], [valueSymbol]: value }) as unknown as ParseResult;
}

/**
 * The control: a whole run's bodies in one task, processed in a loop inside the worker, so what
 * the worker costs apart from messaging is seen. Returns the rows accepted.
 */
export function runAll(task: Omit<ParseTask, 'body' | 'result'> & { bodies: Uint8Array[] }): number {
  let accepted = 0;
  for (const body of task.bodies) {
    const r = parseAndNormalize({ ...task, body, receivedAt: Date.now(), result: 'strings' });
    // The Buffers the normalizer would make of the rows, so the control does the inline variant's work.
    if (r.kind === 'strings') accepted += r.rows.map((row) => Buffer.from(row)).length;
  }
  return accepted;
}
