import { describe, expect, it } from 'vitest';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import type { TelemetryStore } from '@ingest/storage';
import type { InProcessStack } from '@ingest/testkit';
import type { DurableLog } from '@ingest/log';
import { modeEnv, readTopic, useTenantStack, tenantRows } from './helpers.ts';

interface Row {
  name: string;
  value: number;
  app: string;
  labels: Record<string, string>;
  data: string;
}

describe('Influx line protocol from @influxdata/influxdb-client and Telegraf-shaped requests', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let key: string;
  const tenant = `influx-${process.pid}`;

  const rows = (): Promise<Row[]> => tenantRows<Row>(store, tenant, 'name, value, app, labels, data', 'name');

  useTenantStack(tenant, (s) => ({ store, stack, key } = s));

  it('the client writes points; integers beyond 2^53 read back exact', async () => {
    const now = new Date();
    const ns = `${now.getTime()}000000`;
    const api = new InfluxDB({ url: stack.edgeUrl, token: key }).getWriteApi('acme', 'servers', 'ns', { flushInterval: 0, maxRetries: 0 });
    api.writePoint(new Point('cpu').tag('host', 'web-1').floatField('usage', 12.5).timestamp(now));
    api.writePoint(new Point('disk').tag('path', '/var').uintField('free', '18446744073709551615').intField('inodes', 42).timestamp(now));
    // The client's Point keeps signed integers as doubles; a line written as a record keeps them exact.
    api.writeRecord(`counter,host=web-1 total=9223372036854775807i,small=-9007199254740993i ${ns}`);
    await api.close();

    await stack.waitLoaded();
    const got = await rows();
    expect(got.map((r) => [r.name, r.value, r.app, r.labels])).toEqual([
      ['counter.small', -9007199254740992, 'servers', { host: 'web-1' }],
      ['counter.total', 9223372036854775807, 'servers', { host: 'web-1' }],
      ['cpu.usage', 12.5, 'servers', { host: 'web-1' }],
      ['disk.free', 18446744073709551615, 'servers', { path: '/var' }],
      ['disk.inodes', 42, 'servers', { path: '/var' }],
    ]);
    const exact = Object.fromEntries(got.map((r) => [r.name, (JSON.parse(r.data) as { value_exact?: string }).value_exact]));
    expect(exact).toEqual({ 'counter.small': '-9007199254740993', 'counter.total': '9223372036854775807', 'cpu.usage': undefined, 'disk.free': '18446744073709551615', 'disk.inodes': undefined });
  });

  it('1.x /write takes the key as u/p and as Basic; /ping answers 204 with the version header', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const viaP = await fetch(`${stack.edgeUrl}/write?db=telegraf&u=telegraf&p=${encodeURIComponent(key)}&precision=s`, { method: 'POST', body: `mem,host=h1 used=1i ${nowS}` });
    expect(viaP.status).toBe(204);
    const basic = `Basic ${Buffer.from(`telegraf:${key}`).toString('base64')}`;
    const viaBasic = await fetch(`${stack.edgeUrl}/write?db=telegraf&precision=s`, { method: 'POST', headers: { authorization: basic }, body: `mem,host=h2 used=2i ${nowS}` });
    expect(viaBasic.status).toBe(204);
    for (const method of ['GET', 'HEAD']) {
      const ping = await fetch(`${stack.edgeUrl}/ping`, { method });
      expect(ping.status).toBe(204);
      expect(ping.headers.get('x-influxdb-version')).toMatch(/^2\./);
    }
    await stack.waitLoaded();
    const mem = (await rows()).filter((r) => r.name === 'mem.used').map((r) => [r.app, r.labels.host, r.value]);
    expect(mem.sort((a, b) => String(a[1]).localeCompare(String(b[1])))).toEqual([
      ['telegraf', 'h1', 1],
      ['telegraf', 'h2', 2],
    ]);
  });

  it('refused lines are never 204: string-only and out-of-window lines are named, the valid lines kept', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const body = [`ok,k=partial v=1 ${nowS}`, `note text="only a string" ${nowS}`, `old,k=partial v=1 ${nowS - 30 * 86400}`, 'broken line'].join('\n');
    const r = await fetch(`${stack.edgeUrl}/api/v2/write?org=acme&bucket=partial&precision=s`, { method: 'POST', headers: { authorization: `Token ${key}` }, body });
    expect(r.status).toBe(400);
    const err = (await r.json()) as { code: string; message: string; line: number };
    expect(err).toMatchObject({ code: 'invalid', line: 2 });
    expect(err.message).toMatch(/^INGEST_ERR_PARTIAL_WRITE: 1 points stored, 3 refused: line 2: INGEST_ERR_ENTRY_VALUE: .*line 3: INGEST_ERR_ENTRY_TIMESTAMP: .*line 4: INGEST_ERR_ENTRY_UNDECODABLE/);
    await stack.waitLoaded();
    expect((await rows()).filter((x) => x.labels.k === 'partial').map((x) => x.name)).toEqual(['ok.v']);
    // Every refused line is dead-lettered with its reason and its text, the unparseable one too.
    const log: DurableLog = (await modeEnv('embedded')).readLog(stack.dataDir);
    try {
      const dlq = (await readTopic(log, stack.config.backends.dlqTopic)).filter((x) => x.key === tenant).map((x) => JSON.parse(x.value.toString()) as { index: number; code: string; raw: string });
      expect(dlq.map((d) => [d.index, d.code]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
        [2, 'INGEST_ERR_ENTRY_VALUE'],
        [3, 'INGEST_ERR_ENTRY_TIMESTAMP'],
        [4, 'INGEST_ERR_ENTRY_UNDECODABLE'],
      ]);
      expect(dlq.find((d) => d.index === 4)!.raw).toBe('"broken line"');
    } finally {
      await log.close();
    }

    const none = await fetch(`${stack.edgeUrl}/api/v2/write?bucket=partial&precision=s`, { method: 'POST', headers: { authorization: `Token ${key}` }, body: `note text="x" ${nowS}` });
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ code: 'invalid', line: 1, message: expect.stringContaining('INGEST_ERR_NO_VALID_ENTRIES') });
  });

  it('a bad key is 401 in Influx\'s shape, on both APIs, naming no tenant; Token is not taken elsewhere', async () => {
    for (const [path, headers] of [
      ['/api/v2/write?bucket=b', { authorization: 'Token ik_live_wrongwrongwrongwrong00' }],
      ['/write?db=d&u=x&p=ik_live_wrongwrongwrongwrong00', {}],
    ] as const) {
      const r = await fetch(`${stack.edgeUrl}${path}`, { method: 'POST', headers, body: 'm v=1' });
      expect(r.status).toBe(401);
      const text = await r.text();
      expect(JSON.parse(text)).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('INGEST_ERR_INVALID_API_KEY') });
      expect(text).not.toContain(tenant);
    }
    const elsewhere = await fetch(`${stack.edgeUrl}/v2/logs`, { method: 'POST', headers: { authorization: `Token ${key}` }, body: '{"message":"x"}' });
    expect(elsewhere.status).toBe(401);
  });
});
