import { HEADERS, IngestError, ROUTES, ingestError, type HopMeta, type IngestResult, type NormalizeHop, type NormalizeRequest, type QueryHop, type QueryPage, type QueryRequest, type RollupPage, type WriteBatch, type WriteHop, type WriteResult } from '@ingest/contracts';
import { HopClient, type HopOptions } from './client.ts';
import { jsonKeepingInfinity } from './json-text.ts';

const NEWLINE = Buffer.from('\n');

function metaHeaders(meta: HopMeta): Record<string, string> {
  return { [HEADERS.tenant]: meta.tenant, [HEADERS.version]: meta.version, ...meta.trace };
}

/** The normalizer reached over HTTP (the three-process topology). */
export class HttpNormalizeHop implements NormalizeHop {
  private readonly client: HopClient;
  constructor(baseUrl: string, opts: HopOptions) {
    this.client = new HopClient(baseUrl, opts);
  }

  normalize(request: NormalizeRequest, meta: HopMeta): Promise<IngestResult> {
    const { bytes: _bytes, mayHoldInfinity, ...body } = request;
    // 1e309 parsed to Infinity; plain JSON would forward it as null, reported as "missing".
    return this.client.postJson<IngestResult>(ROUTES.normalize, mayHoldInfinity === true ? jsonKeepingInfinity(body) : body, metaHeaders(meta));
  }

  close(graceMs?: number): Promise<void> {
    return this.client.close(graceMs);
  }
}

/**
 * The sink writer reached over HTTP. The body is the rows then the dead letters, one per line, as
 * the normalizer made them; a header says how many lines are rows. Nothing is re-encoded.
 */
export class HttpWriteHop implements WriteHop {
  private readonly client: HopClient;
  constructor(baseUrl: string, opts: HopOptions) {
    this.client = new HopClient(baseUrl, opts);
  }

  write(batch: WriteBatch, meta: HopMeta): Promise<WriteResult> {
    const parts: Buffer[] = [];
    for (const line of batch.rows) parts.push(line, NEWLINE);
    for (const line of batch.deadLetters) parts.push(line, NEWLINE);
    return this.client.post<WriteResult>(ROUTES.write, parts, { 'content-type': 'application/x-ndjson', [HEADERS.rows]: String(batch.rows.length), ...metaHeaders(meta) });
  }

  close(graceMs?: number): Promise<void> {
    return this.client.close(graceMs);
  }
}

/** The sink writer's read route reached over HTTP (GET /v2/query when the sink writer is another process). */
export class HttpQueryHop implements QueryHop {
  private readonly client: HopClient;
  constructor(baseUrl: string, opts: HopOptions) {
    this.client = new HopClient(baseUrl, opts);
  }

  query(request: QueryRequest, meta: HopMeta): Promise<QueryPage | RollupPage> {
    return this.client.postJson<QueryPage | RollupPage>(ROUTES.query, request, metaHeaders(meta));
  }

  close(graceMs?: number): Promise<void> {
    return this.client.close(graceMs);
  }
}

/** Splits a write hop's body back into its lines (views of the body, not copies). */
export function splitWriteBody(body: Buffer, rowCount: number): { rows: Buffer[]; rowBytes: number; deadLetters: Buffer[] } {
  const rows: Buffer[] = [];
  const deadLetters: Buffer[] = [];
  let rowBytes = 0;
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    if (end > start) {
      const line = body.subarray(start, end);
      if (rows.length < rowCount) {
        rows.push(line);
        rowBytes += line.length;
      } else {
        deadLetters.push(line);
      }
    }
    start = end + 1;
  }
  if (rows.length !== rowCount) throw ingestError('INGEST_ERR_INVALID_BODY', [`the write names ${rowCount} rows but its body holds ${rows.length}`]);
  return { rows, rowBytes, deadLetters };
}

/**
 * A stage called in the same process must fail the way it would over HTTP: an IngestError passes
 * as it is; anything unexpected is logged and becomes 503 DEPENDENCY_UNAVAILABLE (retryable), as
 * the HTTP hop maps a 500, rather than a 500 at the edge.
 */
export function inProcessStage<A extends unknown[], R>(name: string, log: { error: (obj: object, msg: string) => void }, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (e instanceof IngestError) throw e;
      log.error({ err: e }, `${name} failed unexpectedly`);
      throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', [name, 1], { retryAfterSeconds: 1, cause: e });
    }
  };
}
