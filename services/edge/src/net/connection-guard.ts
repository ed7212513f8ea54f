import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export type RefusedReason = 'max_connections' | 'per_address';

export interface ConnectionLimits {
  /** Global cap (server.maxConnections): above it Node accepts and closes at once. */
  maxConnections: number;
  /** Cap per client address; 0: none (e.g. behind a load balancer, where every peer is the balancer). */
  maxPerAddress: number;
}

export interface ConnectionSnapshot {
  open: number;
  maxConnections: number;
  maxPerAddress: number;
  addresses: number;
  refused: Record<RefusedReason, number>;
}

/**
 * Caps and counts inbound connections. The global cap is Node's own `maxConnections` (the socket is
 * closed before any byte is read, reported by the server's 'drop' event); the per-address cap
 * closes a new socket from an address that already holds its share, so one client can't take the
 * global cap (or the open-file limit) from everyone else.
 *
 * Per-address state is one counter per address with an open connection, removed at zero: bounded
 * by the global cap.
 */
export class ConnectionGuard {
  private readonly perAddress = new Map<string, number>();
  private readonly refused: Record<RefusedReason, number> = { max_connections: 0, per_address: 0 };
  private open = 0;
  private attached: Server | undefined;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly onRefused: (reason: RefusedReason, address: string | undefined) => void,
  ) {}

  attach(server: Server): void {
    if (this.attached) return;
    this.attached = server;
    server.maxConnections = this.limits.maxConnections;
    server.on('drop', this.onDrop);
    server.on('connection', this.onConnection);
  }

  snapshot(): ConnectionSnapshot {
    return { open: this.open, maxConnections: this.limits.maxConnections, maxPerAddress: this.limits.maxPerAddress, addresses: this.perAddress.size, refused: { ...this.refused } };
  }

  private readonly onDrop = (data?: { remoteAddress?: string }): void => {
    this.refuse('max_connections', data?.remoteAddress);
  };

  private readonly onConnection = (socket: Socket): void => {
    const address = socket.remoteAddress ?? 'unknown';
    const held = this.perAddress.get(address) ?? 0;
    if (this.limits.maxPerAddress > 0 && held >= this.limits.maxPerAddress) {
      socket.destroy();
      this.refuse('per_address', address);
      return;
    }
    this.perAddress.set(address, held + 1);
    this.open++;
    socket.once('close', () => {
      this.open--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
  };

  private refuse(reason: RefusedReason, address: string | undefined): void {
    this.refused[reason]++;
    this.onRefused(reason, address);
  }
}
