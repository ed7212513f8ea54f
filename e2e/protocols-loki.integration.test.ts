import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import winston from 'winston';
import LokiTransport from 'winston-loki';
import type { TelemetryStore } from '@ingest/storage';
import { waitUntil, type InProcessStack } from '@ingest/testkit';
import { useTenantStack, tenantRows } from './helpers.ts';

interface Row {
  app: string;
  level: string;
  message: string;
  labels: Record<string, string>;
  data: string;
}

describe('Loki push from winston-loki (protobuf + snappy, and JSON) and Promtail-shaped JSON', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let key: string;
  const tenant = `loki-${process.pid}`;

  const rows = (): Promise<Row[]> => tenantRows<Row>(store, tenant, 'app, level, message, labels, data', 'message');

  useTenantStack(tenant, (s) => ({ store, stack, key } = s));

  for (const json of [false, true]) {
    it(`winston-loki (${json ? 'JSON' : 'protobuf + snappy'}) lands exact counts`, async () => {
      if (!json) {
        // winston-loki falls back to JSON quietly when its snappy binding is missing: make sure this is the protobuf path.
        const here = createRequire(import.meta.url);
        const snappy = createRequire(here.resolve('winston-loki'))('snappy') as { compressSync?: unknown };
        expect(typeof snappy.compressSync).toBe('function');
      }
      const errors: unknown[] = [];
      const transport = new LokiTransport({
        host: stack.edgeUrl,
        json,
        batching: false,
        headers: { authorization: `Bearer ${key}` },
        labels: { app: 'shop', encoding: json ? 'json' : 'proto' },
        onConnectionError: (e: unknown) => errors.push(e),
        // The line as written (winston-loki's default appends the meta as JSON).
        format: winston.format.printf((info) => String(info.message)),
      });
      const logger = winston.createLogger({ transports: [transport] });
      const n = 25;
      for (let i = 0; i < n; i++) logger.warn(`${json ? 'json' : 'proto'} line ${String(i).padStart(2, '0')}`);
      await waitUntil(`${n} ${json ? 'JSON' : 'protobuf'} lines at rest`, async () => {
        await stack.waitLoaded();
        return (await rows()).filter((r) => r.labels.encoding === (json ? 'json' : 'proto')).length === n || undefined;
      }, 60_000, 100);
      expect(errors).toEqual([]);
      const mine = (await rows()).filter((r) => r.labels.encoding === (json ? 'json' : 'proto'));
      expect(mine).toHaveLength(n);
      expect(mine[0]).toMatchObject({ app: 'shop', level: 'warn', labels: { app: 'shop', level: 'warn' } });
      expect(mine.map((r) => r.message)).toEqual(Array.from({ length: n }, (_, i) => `${json ? 'json' : 'proto'} line ${String(i).padStart(2, '0')}`));
      await transport.close();
    });
  }

  it('Promtail-shaped gzip JSON with structured metadata; a refused entry is named, not 204', async () => {
    const ns = `${Date.now()}000123`;
    const old = `${Date.now() - 30 * 86400_000}000000`;
    const body = { streams: [{ stream: { service_name: 'promtail-app', filename: '/var/log/x.log' }, values: [[ns, 'with metadata', { trace_id: 't-1' }], [old, 'too old']] }] };
    const r = await fetch(`${stack.edgeUrl}/loki/api/v1/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(body)),
    });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { code: 'INGEST_ERR_PARTIAL_WRITE' }, accepted: 1, rejected: [{ index: 1, code: 'INGEST_ERR_ENTRY_TIMESTAMP' }] });
    const ok = await fetch(`${stack.edgeUrl}/loki/api/v1/push`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ streams: [{ stream: { job: 'j' }, values: [[ns, 'second push']] }] }) });
    expect(ok.status).toBe(204);
    await stack.waitLoaded();
    const got = await rows();
    const md = got.find((x) => x.message === 'with metadata')!;
    expect(md).toMatchObject({ app: 'promtail-app', labels: { filename: '/var/log/x.log' } });
    expect(JSON.parse(md.data)).toEqual({ structured_metadata: { trace_id: 't-1' }, time_unix_nano: ns });
    expect(got.some((x) => x.message === 'too old')).toBe(false);
  });

  it('a bad key is 401 and names no tenant', async () => {
    const r = await fetch(`${stack.edgeUrl}/loki/api/v1/push`, { method: 'POST', headers: { authorization: 'Bearer ik_live_wrongwrongwrongwrong00', 'content-type': 'application/json' }, body: '{"streams":[]}' });
    expect(r.status).toBe(401);
    const text = await r.text();
    expect(text).toContain('INGEST_ERR_INVALID_API_KEY');
    expect(text).not.toContain(tenant);
  });
});
