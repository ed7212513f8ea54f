import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { HEADERS } from '@ingest/contracts';

/** Header the load balancer adds with LB_SHARED_SECRET, proving a request passed through it. */
export const LB_SECRET_HEADER = 'x-ingest-lb-secret';

/** Headers only the load balancer may set: they route a request (mirror table, version). */
export const LB_ONLY_HEADERS: readonly string[] = ['x-ingest-mirror', HEADERS.version];

export interface TrustedHopOptions {
  /** LB_SHARED_SECRET; unset: no request is trusted by secret. */
  sharedSecret?: string | undefined;
  /** TRUSTED_PROXIES: IPs and CIDRs (validated by @ingest/config). */
  proxies?: readonly string[];
}

/**
 * Decides whether a request came from a trusted hop (our load balancer) and, when it did not,
 * strips the headers only that hop may set: a producer talking to the edge directly must not be
 * able to route its own traffic into the mirror table, or pick its ingest version.
 * With nothing configured nobody is trusted, so the safe state is the default one.
 */
export class TrustedHops {
  private readonly secret: Buffer | undefined;
  private readonly peers: BlockList | undefined;

  constructor(o: TrustedHopOptions) {
    this.secret = o.sharedSecret ? Buffer.from(o.sharedSecret) : undefined;
    const proxies = o.proxies ?? [];
    if (proxies.length > 0) {
      const list = new BlockList();
      for (const p of proxies) {
        const slash = p.indexOf('/');
        const addr = slash < 0 ? p : p.slice(0, slash);
        const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
        if (slash < 0) list.addAddress(addr, type);
        else list.addSubnet(addr, Number(p.slice(slash + 1)), type);
      }
      this.peers = list;
    }
  }

  /**
   * The socket's peer, never X-Forwarded-For (which the producer writes). An IPv4 peer on a
   * dual-stack socket shows as ::ffff:a.b.c.d; it is matched as the IPv4 address it is.
   */
  private peerTrusted(remote: string | undefined): boolean {
    if (this.peers === undefined || remote === undefined) return false;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote)?.[1];
    if (v4 !== undefined) return this.peers.check(v4, 'ipv4');
    const family = isIP(remote);
    return family !== 0 && this.peers.check(remote, family === 6 ? 'ipv6' : 'ipv4');
  }

  private secretPresented(got: string | string[] | undefined): boolean {
    if (this.secret === undefined || typeof got !== 'string') return false;
    const given = Buffer.from(got);
    return given.length === this.secret.length && timingSafeEqual(given, this.secret);
  }

  /** True when the request came through a trusted hop. */
  trusted(req: Pick<FastifyRequest, 'headers' | 'socket'>): boolean {
    return this.secretPresented(req.headers[LB_SECRET_HEADER]) || this.peerTrusted(req.socket.remoteAddress);
  }

  /**
   * Runs first on every request: keeps LB-only headers from a trusted hop and drops them from
   * anyone else. The secret itself is always dropped, so it never travels downstream or to legacy.
   */
  scrub(req: Pick<FastifyRequest, 'headers' | 'socket'>): boolean {
    const ok = this.trusted(req);
    delete req.headers[LB_SECRET_HEADER];
    if (!ok) for (const h of LB_ONLY_HEADERS) delete req.headers[h];
    return ok;
  }
}
