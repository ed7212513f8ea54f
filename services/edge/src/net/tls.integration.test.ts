import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@ingest/config';
import { addTenantKey } from '@ingest/tenants';
import { waitUntil } from '@ingest/testkit';
import { buildEdge } from '../app.ts';
import { TlsReloader } from '@ingest/internal-http';

interface Pair {
  cert: string;
  key: string;
  fingerprint: string;
}

/** A fresh self-signed certificate for 127.0.0.1 (openssl ships with Debian). */
function makePair(dir: string, name: string): Pair {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key, fingerprint: '' };
}

async function withFingerprint(p: Pair): Promise<Pair> {
  return { ...p, fingerprint: new X509Certificate(await readFile(p.cert)).fingerprint256 };
}

/** The certificate a new TLS connection is shown. */
function presentedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

interface Answer {
  status: number;
  reusedSocket: boolean;
  socket: TLSSocket;
  /** The certificate this connection was shown (the socket leaves the response once it ends). */
  fingerprint: string;
  alpn: string | false | null;
}

function get(port: number, agent: HttpsAgent, ca: string[], p = '/healthz'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: p, agent, ca }, (res) => {
      const socket = res.socket as TLSSocket;
      const seen = { fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol };
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, reusedSocket: req.reusedSocket, socket, ...seen }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('edge over HTTPS (EDGE_TLS_CERT / EDGE_TLS_KEY)', () => {
  let dir: string;
  let a: Pair;
  let b: Pair;
  let tenantsFile: string;
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'edge-tls-'));
    a = await withFingerprint(makePair(dir, 'edge-a'));
    b = await withFingerprint(makePair(dir, 'edge-b'));
    tenantsFile = path.join(dir, 'tenants.json');
    await addTenantKey(tenantsFile, 't1');
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The edge serving the given pair from files of its own (so they can be replaced). */
  async function start(pair: Pair, env: Record<string, string> = {}): Promise<{ port: number; certFile: string; keyFile: string }> {
    const certFile = path.join(dir, `serving-${apps.length}-${Date.now()}.crt`);
    const keyFile = `${certFile.slice(0, -4)}.key`;
    await writeFile(certFile, await readFile(pair.cert));
    await writeFile(keyFile, await readFile(pair.key));
    const cfg = loadConfig({ INGEST_DATA_DIR: dir, TENANTS_FILE: tenantsFile, EDGE_TLS_CERT: certFile, EDGE_TLS_KEY: keyFile, EDGE_TLS_RELOAD_MS: '100', ...env });
    const app = await buildEdge({ config: cfg.edge, logger: false });
    apps.push(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    if (!addr || typeof addr !== 'object') throw new Error('no address');
    return { port: addr.port, certFile, keyFile };
  }

  /** Replaces the files the way a Secret update or certbot does: whole new files moved into place. */
  async function install(pair: Pair, certFile: string, keyFile: string): Promise<void> {
    await writeFile(`${keyFile}.new`, await readFile(pair.key));
    await writeFile(`${certFile}.new`, await readFile(pair.cert));
    await rename(`${keyFile}.new`, keyFile);
    await rename(`${certFile}.new`, certFile);
  }

  it('serves HTTPS; a replaced certificate reaches new connections while an open keep-alive connection goes on', async () => {
    const { port, certFile, keyFile } = await start(a);
    const ca = [await readFile(a.cert, 'utf8'), await readFile(b.cert, 'utf8')];
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(port, agent, ca);
      expect(first.status).toBe(200);
      expect(first.fingerprint).toBe(a.fingerprint);

      await install(b, certFile, keyFile);
      await waitUntil('a new connection to be shown the new certificate', async () => (await presentedFingerprint(port)) === b.fingerprint, 10_000, 50);

      // The connection opened before the change is still open and still the old session.
      const again = await get(port, agent, ca);
      expect(again.status).toBe(200);
      expect(again.reusedSocket).toBe(true);
      expect(again.socket).toBe(first.socket);
      expect(again.fingerprint).toBe(a.fingerprint);
    } finally {
      agent.destroy();
    }
  });

  it('a key that does not match the new certificate is not applied; the matching pair is, once it arrives', async () => {
    const certFile = path.join(dir, 'reload.crt');
    const keyFile = path.join(dir, 'reload.key');
    await writeFile(certFile, await readFile(a.cert));
    await writeFile(keyFile, await readFile(a.key));
    const applied: string[] = [];
    const failures: string[] = [];
    const reloader = new TlsReloader({ certFile, keyFile, reloadMs: 60_000, certVar: 'EDGE_TLS_CERT', keyVar: 'EDGE_TLS_KEY' }, { setSecureContext: (m: { cert: Buffer }) => applied.push(new X509Certificate(m.cert).fingerprint256) }, { reloaded: () => undefined, failed: (e: Error) => failures.push(e.message) });
    expect(await reloader.tick()).toBe(false);
    // The certificate is renewed before its key lands: not applied, and said so.
    await writeFile(`${certFile}.new`, await readFile(b.cert));
    await rename(`${certFile}.new`, certFile);
    expect(await reloader.tick()).toBe(false);
    expect(applied).toEqual([]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain(`EDGE_TLS_CERT ${certFile}`);
    await writeFile(`${keyFile}.new`, await readFile(b.key));
    await rename(`${keyFile}.new`, keyFile);
    expect(await reloader.tick()).toBe(true);
    expect(applied).toEqual([b.fingerprint]);
    reloader.stop();
  });

  it('a mismatched pair at start fails the start with the file names', async () => {
    const cfg = loadConfig({ INGEST_DATA_DIR: dir, TENANTS_FILE: tenantsFile, EDGE_TLS_CERT: a.cert, EDGE_TLS_KEY: b.key });
    await expect(buildEdge({ config: cfg.edge, logger: false })).rejects.toThrow(`EDGE_TLS_CERT ${a.cert} / EDGE_TLS_KEY ${b.key}`);
  });

  it('EDGE_HTTP2=true serves HTTP/2 over TLS and still HTTP/1.1 to clients without it', async () => {
    const { port } = await start(a, { EDGE_HTTP2: 'true' });
    const ca = await readFile(a.cert, 'utf8');
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/healthz' });
        s.once('response', (h) => resolve(Number(h[':status'])));
        s.once('error', reject);
        s.resume();
        s.end();
      });
      expect(status).toBe(200);
      expect(session.alpnProtocol).toBe('h2');
    } finally {
      session.close();
    }
    const agent = new HttpsAgent({ keepAlive: false });
    try {
      const h1 = await get(port, agent, [ca]);
      expect(h1.status).toBe(200);
      expect(h1.alpn).toBe(false);
    } finally {
      agent.destroy();
    }
  });
});
