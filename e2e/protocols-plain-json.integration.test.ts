import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import type { InProcessStack } from '@ingest/testkit';
import { modeEnv, readTopic, useTenantStack } from './helpers.ts';

const run = promisify(execFile);

/** curl as a person would run it: status on the last line, body before it. */
async function curl(url: string, args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-w', '\n%{http_code}', url, ...args]);
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
}

describe('plain JSON logs on /v2/logs, with curl', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let key: string;
  const tenant = `plain-${process.pid}`;

  useTenantStack(tenant, (s) => ({ store, stack, key } = s));

  const now = Date.now();
  const ndjson = [
    { message: 'vector line', timestamp: new Date(now).toISOString(), level: 'warn', host: 'h1', service: 'web' },
    { log: 'fluent bit line', date: now / 1000, stream: 'stderr', kubernetes: { pod: 'p-1' } },
    { msg: 'pino line', time: now, level: 50, pid: 42 },
  ]
    .map((o) => JSON.stringify(o))
    .join('\n');

  it('arbitrary NDJSON lands on /v2/logs, mapped', async () => {
    const r = await curl(`${stack.edgeUrl}/v2/logs`, ['-H', `authorization: Bearer ${key}`, '-H', 'content-type: application/x-ndjson', '--data-binary', ndjson]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ accepted: 3, rejected: [] });
    await stack.waitLoaded();
    const rs = await store.client.query({
      query: 'SELECT app, level, message, labels, data, toUnixTimestamp64Milli(ts) AS ts FROM telemetry FINAL WHERE tenant_id = {t:String} ORDER BY message',
      query_params: { t: tenant },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ app: string; level: string; message: string; labels: Record<string, string>; data: string; ts: string | number }>();
    expect(rows.map((x) => [x.message, x.app, x.level, x.labels, Number(x.ts)])).toEqual([
      ['fluent bit line', '', 'info', { stream: 'stderr' }, Math.floor(now)],
      ['pino line', '', 'error', { pid: '42' }, now],
      ['vector line', 'web', 'warn', { host: 'h1' }, now],
    ]);
    expect(JSON.parse(rows[0]!.data)).toEqual({ kubernetes: { pod: 'p-1' } });
  });

  it('the same NDJSON to /v2/ingest is 400, not 200, whatever the content type', async () => {
    const asNdjson = await curl(`${stack.edgeUrl}/v2/ingest`, ['-H', `authorization: Bearer ${key}`, '-H', 'content-type: application/x-ndjson', '--data-binary', ndjson]);
    expect(asNdjson.status).toBe(400);
    const body = JSON.parse(asNdjson.body) as { error: { code: string }; accepted: number; rejected: { index: number; code: string }[] };
    expect(body.error.code).toBe('INGEST_ERR_NO_VALID_ENTRIES');
    expect(body.accepted).toBe(0);
    expect(body.rejected.map((x) => x.index)).toEqual([0, 1, 2]);

    const asJson = await curl(`${stack.edgeUrl}/v2/ingest`, ['-H', `authorization: Bearer ${key}`, '-H', 'content-type: application/json', '--data-binary', ndjson]);
    expect(asJson.status).toBe(400);
    expect(JSON.parse(asJson.body)).toMatchObject({ error: { code: 'INGEST_ERR_INVALID_JSON', message: expect.stringContaining('application/x-ndjson') } });
  });

  it('a JSON array with nothing usable is 400 with each reason; a bad key is 401 naming no tenant', async () => {
    const r = await curl(`${stack.edgeUrl}/v2/logs`, ['-H', `authorization: Bearer ${key}`, '-H', 'content-type: application/json', '--data-binary', '[{"no":"message"}, "a string"]']);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'INGEST_ERR_NO_VALID_ENTRIES' }, rejected: [{ index: 0, code: 'INGEST_ERR_ENTRY_UNDECODABLE' }, { index: 1, code: 'INGEST_ERR_ENTRY_UNDECODABLE' }] });
    // Refused though nothing was stored: both are dead-lettered with what was sent.
    const log = (await modeEnv('embedded')).readLog(stack.dataDir);
    try {
      const dlq = (await readTopic(log, stack.config.backends.dlqTopic)).filter((x) => x.key === tenant).map((x) => JSON.parse(x.value.toString()) as { index: number; raw: string });
      // (The tenant's earlier /v2/ingest rejects are in the topic too.)
      expect(dlq.map((d) => [d.index, d.raw])).toEqual(
        expect.arrayContaining([
          [0, '{"no":"message"}'],
          [1, '"a string"'],
        ]),
      );
    } finally {
      await log.close();
    }
    const bad = await curl(`${stack.edgeUrl}/v2/logs`, ['-H', 'authorization: Bearer ik_live_wrongwrongwrongwrong0000', '--data-binary', ndjson]);
    expect(bad.status).toBe(401);
    expect(bad.body).toContain('INGEST_ERR_INVALID_API_KEY');
    expect(bad.body).not.toContain(tenant);
  });
});
