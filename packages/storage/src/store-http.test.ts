import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROW_COLUMNS } from './rows.ts';
import { TelemetryStore } from './store.ts';

// A stand-in for ClickHouse's HTTP interface that records what the client sends: this unit test is
// about the request the store builds, not about ClickHouse.
interface Seen {
  query: string | null;
  token: string | null;
  body: string;
}
let server: Server;
let url: string;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.includes('version()')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end('{"v":"24.8.1.1"}\n');
        return;
      }
      seen.push({ query: u.searchParams.get('query'), token: u.searchParams.get('insert_deduplication_token'), body });
      res.writeHead(200, { 'x-clickhouse-summary': '{"written_rows":"1"}' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('TelemetryStore over ClickHouse HTTP', () => {
  it('insertEncoded sends the encoded rows as the body of an INSERT … FORMAT JSONCompactEachRow with the dedup token', async () => {
    const store = await TelemetryStore.open({ url });
    const body = Buffer.from('["2026-01-01 00:00:00.000","2026-01-01 00:00:00.000","t","id-1"]\n["2026-01-01 00:00:00.000","2026-01-01 00:00:00.000","t","id-2"]\n');
    await store.insertEncoded('telemetry', body, 'tok-1');
    expect(seen).toEqual([{ query: `INSERT INTO telemetry (${ROW_COLUMNS.join(', ')}) FORMAT JSONCompactEachRow`, token: 'tok-1', body: body.toString('utf8') }]);
    await store.client.close();
  });
});
