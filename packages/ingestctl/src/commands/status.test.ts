import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../main.ts';

/** A stand-in service answering /healthz, /readyz and /status with fixed bodies (unit test only). */
async function fakeService(ready: boolean, checks: Record<string, string>, status: Record<string, unknown>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const body = req.url === '/readyz' ? { ready, checks } : req.url === '/status' ? status : { status: 'ok' };
    res.writeHead(req.url === '/readyz' && !ready ? 503 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('ingestctl status', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('shows the sink writer’s quarantined log records and why it is not ready', async () => {
    const edge = await fakeService(true, { normalizer: 'ok' }, { budget: { bytes: 0, maxBytes: 10, entries: 0, maxEntries: 10 } });
    const normalizer = await fakeService(true, {}, {});
    const sink = await fakeService(
      false,
      { log: 'appends failing: telemetry.v2/1 refuses appends: append failed: ENOSPC: no space left on device', store: 'ok (chdb)' },
      { lag: { total: 12 }, logCorruptRecords: 3 },
    );
    servers.push(edge.server, normalizer.server, sink.server);
    const out: string[] = [];
    // Each stand-in serves its public routes and its admin listener's /status on one port.
    const env = { EDGE_URL: edge.url, NORMALIZER_URL: normalizer.url, SINK_URL: sink.url, EDGE_ADMIN_URL: edge.url, NORMALIZER_ADMIN_URL: normalizer.url, SINK_ADMIN_URL: sink.url };
    const code = await runCli(['status'], { out: (s) => out.push(s), err: () => undefined, env });
    expect(code).toBe(1);
    const text = out.join('\n');
    expect(text).toMatch(/LOG DAMAGE/);
    expect(text).toMatch(/sink-writer .*up, not ready \(log: appends failing: telemetry\.v2\/1 refuses appends: append failed: ENOSPC.*3 record\(s\) quarantined/);

    const json: string[] = [];
    await runCli(['status', '--json'], { out: (s) => json.push(s), err: () => undefined, env });
    const parsed = JSON.parse(json.join('')) as { services: Array<{ service: string; status?: Record<string, unknown> }> };
    expect(parsed.services.find((s) => s.service === 'sink-writer')?.status?.['logCorruptRecords']).toBe(3);
  });

  it('says which URL failed and why: refused, unauthorised', async () => {
    const ok = await fakeService(true, {}, {});
    // Answers 401 to everything, as a service behind INGEST_INTERNAL_TOKEN would to a caller without it.
    const locked = createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"INGEST_ERR_INTERNAL_UNAUTHENTICATED"}}');
    });
    await new Promise<void>((r) => locked.listen(0, '127.0.0.1', r));
    const lockedUrl = `http://127.0.0.1:${(locked.address() as AddressInfo).port}`;
    // A port that was just free: nothing listens there.
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const goneUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise((r) => gone.close(r));
    servers.push(ok.server, locked);
    const out: string[] = [];
    const env = { EDGE_URL: goneUrl, NORMALIZER_URL: lockedUrl, SINK_URL: ok.url, EDGE_ADMIN_URL: ok.url, NORMALIZER_ADMIN_URL: ok.url, SINK_ADMIN_URL: ok.url };
    const code = await runCli(['status'], { out: (s) => out.push(s), err: () => undefined, env });
    expect(code).toBe(3);
    const text = out.join('\n');
    expect(text).toContain(`down: ${goneUrl}/healthz: connection refused`);
    expect(text).toContain(`down: ${lockedUrl}/healthz: unauthorised (HTTP 401; set INGEST_INTERNAL_TOKEN`);
    expect(text).not.toMatch(/fetch failed/);
  });
});
