import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { buildEdge } from '@ingest/edge';
import { logEntry, postIngest, startInProcessStack, waitForKey, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

/** A CA, and a certificate it signed for 127.0.0.1 (openssl ships with Debian). */
function makeCa(dir: string): { ca: string; cert: string; key: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ingest-internal-ca']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'svc.key', '-out', 'svc.csr', '-subj', '/CN=ingest-internal']);
  execFileSync('sh', ['-c', "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"], { cwd: dir });
  run(['x509', '-req', '-in', 'svc.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'svc.crt', '-days', '1', '-extfile', 'ext.cnf']);
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'svc.crt'), key: path.join(dir, 'svc.key') };
}

/**
 * Internal hops over TLS: the normalizer and sink writer serve HTTPS on their ports, and the edge's
 * and normalizer's hops verify them against INTERNAL_TLS_CA — three services joined by real HTTPS.
 */
describe('internal TLS between edge, normalizer and sink writer (split topology)', () => {
  let dir: string;
  let store: TelemetryStore;
  let stack: InProcessStack;
  let pem: { ca: string; cert: string; key: string };
  let previous: Dispatcher;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'internal-tls-'));
    pem = makeCa(dir);
    // The test's own calls to the sink writer's port (waitLoaded, as an operator's tools would) trust the CA too.
    previous = getGlobalDispatcher();
    setGlobalDispatcher(new Agent({ connect: { ca: await readFile(pem.ca) } }));
    store = await sharedStore();
    stack = await startInProcessStack({
      store,
      topology: 'split',
      env: { NORMALIZER_TLS_CERT: pem.cert, NORMALIZER_TLS_KEY: pem.key, SINK_TLS_CERT: pem.cert, SINK_TLS_KEY: pem.key, INTERNAL_TLS_CA: pem.ca },
    });
  });
  afterAll(async () => {
    setGlobalDispatcher(previous);
    await stack?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('entries go edge → normalizer → sink writer over HTTPS, land, and read back through the query hop', async () => {
    expect(stack.sinkUrl).toMatch(/^https:\/\/127\.0\.0\.1:/);
    expect(stack.config.edge.normalizerUrl).toMatch(/^https:\/\//);
    const tenant = tenantId('tls');
    const key = await stack.tenant(tenant);
    const batch = Array.from({ length: 50 }, (_, i) => logEntry(i));
    const r = await postIngest(stack.edgeUrl, key, batch);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.accepted).toBe(50);
    await stack.waitLoaded();
    const q = await fetch(new URL('/v2/query?limit=100', stack.edgeUrl), { headers: { authorization: `Bearer ${key}` } });
    expect(q.status).toBe(200);
    expect(((await q.json()) as { entries: unknown[] }).entries).toHaveLength(50);
  });

  it('plain HTTP to an internal port gets no answer, and a hop that does not trust the CA answers 503 DEPENDENCY_UNAVAILABLE', async () => {
    const normalizerPort = (stack.normalizer.server.address() as AddressInfo).port;
    await expect(fetch(`http://127.0.0.1:${normalizerPort}/healthz`)).rejects.toThrow();
    // Over HTTPS, with the CA, the same port answers.
    expect((await fetch(`https://127.0.0.1:${normalizerPort}/healthz`)).status).toBe(200);

    // The same edge without INTERNAL_TLS_CA: the normalizer's certificate is not one it trusts.
    const untrusting = await buildEdge({ config: { ...stack.config.edge, hopCaFile: undefined }, logger: false, tenantsReloadMs: 200 });
    try {
      const url = await untrusting.listen({ host: '127.0.0.1', port: 0 });
      const key = await stack.tenant(tenantId('tls-untrusted'));
      await waitForKey(untrusting, key);
      const r = await postIngest(url, key, [logEntry(1)]);
      expect(r.status).toBe(503);
      expect(r.body.error?.code).toBe('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
    } finally {
      await untrusting.close();
    }
  });
});
