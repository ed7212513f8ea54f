import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
/** A server's certificate and key files, and the variables that named them (for messages). */
export interface ServerTlsFiles {
  certFile: string;
  keyFile: string;
  reloadMs: number;
  certVar: string;
  keyVar: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** What the server is given at start: a bad pair fails the start with the file names. */
export function readTlsMaterial(cfg: ServerTlsFiles): TlsMaterial {
  const m = { cert: readFileSync(cfg.certFile), key: readFileSync(cfg.keyFile) };
  check(cfg, m);
  return m;
}

function check(cfg: ServerTlsFiles, m: TlsMaterial): void {
  try {
    // Throws on a malformed PEM or a key that does not match the certificate.
    createSecureContext(m);
  } catch (e) {
    throw new Error(`${cfg.certVar} ${cfg.certFile} / ${cfg.keyVar} ${cfg.keyFile}: ${(e as Error).message}`, { cause: e });
  }
}

/** The server side of a reload: https.Server and http2.Http2SecureServer both have it. */
export interface SecureContextTarget {
  setSecureContext(options: TlsMaterial): void;
}

export interface TlsReloaderEvents {
  reloaded(): void;
  /** A changed pair that does not load (half-written, key and cert from different renewals): kept the old one. */
  failed(err: Error): void;
}

/**
 * Re-reads the certificate and key when either file changes (stat every reloadMs; a Kubernetes
 * Secret update swaps a symlink, which fs.watch on the path would miss) and gives the server a new
 * secure context. New TLS handshakes use it; connections already open are left as they are.
 * A pair that fails to load keeps the current one and is retried on the next change or tick.
 */
export class TlsReloader {
  private timer: NodeJS.Timeout | undefined;
  private seen: string;
  private busy = false;

  constructor(
    private readonly cfg: ServerTlsFiles,
    private readonly target: SecureContextTarget,
    private readonly events: TlsReloaderEvents,
  ) {
    this.seen = fingerprintSync(cfg);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.cfg.reloadMs);
    this.timer.unref();
  }

  /** Checks now; resolves to true when a new pair was applied. */
  async tick(): Promise<boolean> {
    if (this.busy) return false;
    this.busy = true;
    try {
      const now = await fingerprint(this.cfg);
      if (now === this.seen) return false;
      const m = { cert: await readFile(this.cfg.certFile), key: await readFile(this.cfg.keyFile) };
      check(this.cfg, m);
      this.target.setSecureContext(m);
      this.seen = now;
      this.events.reloaded();
      return true;
    } catch (e) {
      this.events.failed(e as Error);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

const key = (s: { mtimeMs: number; size: number; ino: number }): string => `${s.mtimeMs}:${s.size}:${s.ino}`;

function fingerprintSync(cfg: ServerTlsFiles): string {
  return `${key(statSync(cfg.certFile))}|${key(statSync(cfg.keyFile))}`;
}

async function fingerprint(cfg: ServerTlsFiles): Promise<string> {
  const [c, k] = await Promise.all([stat(cfg.certFile), stat(cfg.keyFile)]);
  return `${key(c)}|${key(k)}`;
}

/** The server half of internal TLS: what a normalizer or sink writer hands fastify, and its reloader. */
/** The parts of a fastify instance the reloader needs: its server, its log, and a hook to stop with it. */
export interface TlsServedApp {
  server: unknown;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  addHook(name: 'onClose', hook: () => Promise<void>): unknown;
}

export function serveTls(cfg: ServerTlsFiles): { https: TlsMaterial; attach(app: TlsServedApp): TlsReloader } {
  let lastFailure = '';
  return {
    https: readTlsMaterial(cfg),
    /** Starts reloading the files into `app`'s server, stopped when the app closes. */
    attach(app) {
      const log = app.log;
      const r = new TlsReloader(cfg, app.server as SecureContextTarget, {
        reloaded: () => log.info({ certFile: cfg.certFile }, 'TLS certificate reloaded'),
        // Once per distinct failure: the files are checked every reloadMs until they load.
        failed: (err) => {
          if (err.message === lastFailure) return;
          lastFailure = err.message;
          log.warn({ err: err.message }, 'TLS certificate change not applied; still serving the previous one');
        },
      });
      r.start();
      app.addHook('onClose', async () => r.stop());
      return r;
    },
  };
}
