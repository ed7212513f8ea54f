import { describe, expect, it } from 'vitest';
import { pushTimeseries } from 'prometheus-remote-write';
import { compress } from 'snappyjs';
import type { TelemetryStore } from '@ingest/storage';
import { protoType } from '@ingest/protocols';
import type { InProcessStack } from '@ingest/testkit';
import { useTenantStack, tenantRows } from './helpers.ts';

interface Row {
  name: string;
  value: number;
  app: string;
  labels: Record<string, string>;
  ts: string | number;
}

describe('Prometheus remote write 1.0 from prometheus-remote-write', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let key: string;
  const tenant = `prw-${process.pid}`;

  const rows = (): Promise<Row[]> => tenantRows<Row>(store, tenant, 'name, value, app, labels, toUnixTimestamp64Milli(ts) AS ts', 'name, ts');

  useTenantStack(tenant, (s) => ({ store, stack, key } = s));

  it('every sample lands once, with name, labels, value and timestamp', async () => {
    const t0 = Date.now() - 60_000;
    const series = Array.from({ length: 20 }, (_, s) => ({
      labels: { __name__: s % 2 === 0 ? 'node_cpu_seconds_total' : 'node_load1', job: 'node', instance: `host-${s}:9100` },
      samples: Array.from({ length: 5 }, (_, i) => ({ value: s * 10 + i + 0.5, timestamp: t0 + i * 15_000 })),
    }));
    const r = await pushTimeseries(series, { url: `${stack.edgeUrl}/api/v1/push`, headers: { authorization: `Bearer ${key}` }, fetch: globalThis.fetch as never });
    expect(r.status).toBe(204);
    // A resend of the same request (what Prometheus does after a timeout) adds nothing at rest.
    expect((await pushTimeseries(series, { url: `${stack.edgeUrl}/api/v1/push`, headers: { authorization: `Bearer ${key}` }, fetch: globalThis.fetch as never })).status).toBe(204);
    await stack.waitLoaded();
    const got = await rows();
    expect(got).toHaveLength(100);
    expect((await stack.rowStats(tenant)).final).toBe(100);
    const one = got.find((x) => x.labels.instance === 'host-3:9100' && Number(x.ts) === t0 + 30_000)!;
    expect(one).toMatchObject({ name: 'node_load1', value: 32.5, app: 'node', labels: { job: 'node', instance: 'host-3:9100' } });
  });

  it('staleness markers and NaN are skipped and counted (204); Inf is refused by sample, never 204', async () => {
    const type = protoType(['prometheus/remote.proto'], 'prometheus.WriteRequest');
    const now = Date.now();
    const encode = (samples: { value: number; timestamp: number }[], stale = false) => {
      const pb = Buffer.from(type.encode(type.fromObject({ timeseries: [{ labels: [{ name: '__name__', value: 'stale_test' }], samples }] })).finish());
      if (stale) {
        // Prometheus's StaleNaN bit pattern in place of the first sample's value.
        const marker = Buffer.alloc(8);
        marker.writeDoubleLE(samples[0]!.value);
        Buffer.from(new BigUint64Array([0x7ff0000000000002n]).buffer).copy(pb, pb.indexOf(marker));
      }
      return compress(new Uint8Array(pb));
    };
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' };
    const stale = await fetch(`${stack.edgeUrl}/api/v1/push`, { method: 'POST', headers, body: encode([{ value: 4242.4242, timestamp: now }], true) });
    expect(stale.status).toBe(204);
    const nan = await fetch(`${stack.edgeUrl}/api/v1/push`, { method: 'POST', headers, body: encode([{ value: Number.NaN, timestamp: now }, { value: 1, timestamp: now }]) });
    expect(nan.status).toBe(204);
    const inf = await fetch(`${stack.edgeUrl}/api/v1/push`, { method: 'POST', headers, body: encode([{ value: Number.POSITIVE_INFINITY, timestamp: now + 1 }, { value: 2, timestamp: now + 1 }]) });
    expect(inf.status).toBe(400);
    expect(await inf.json()).toMatchObject({ error: { code: 'INGEST_ERR_PARTIAL_WRITE' }, accepted: 1, rejected: [{ index: 0, code: 'INGEST_ERR_ENTRY_VALUE' }] });
    await stack.waitLoaded();
    expect((await rows()).filter((x) => x.name === 'stale_test').map((x) => x.value)).toEqual([1, 2]);
    const metrics = await (await fetch(`${stack.edgeAdminUrl}/metrics`)).text();
    expect(metrics).toContain(`ingest_skipped_items_total{tenant="${tenant}",reason="stale_marker",service="edge"} 1`);
    expect(metrics).toContain(`ingest_skipped_items_total{tenant="${tenant}",reason="nan",service="edge"} 1`);
  });

  it('a bad key is 401 and names no tenant; remote write 2.0 is refused with 415', async () => {
    const r = await pushTimeseries({ labels: { __name__: 'x' }, samples: [{ value: 1 }] }, { url: `${stack.edgeUrl}/api/v1/push`, headers: { authorization: 'Bearer ik_live_wrongwrongwrongwrong00' }, fetch: globalThis.fetch as never });
    expect(r.status).toBe(401);
    expect(r.errorMessage ?? '').not.toContain(tenant);
    const v2 = await fetch(`${stack.edgeUrl}/api/v1/push`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-protobuf;proto=io.prometheus.write.v2.Request' }, body: Buffer.alloc(1) });
    expect(v2.status).toBe(415);
  });
});
