/**
 * Serialises the WAL's file operations. Its callers are a fixed handful of loops (writer, reader,
 * checkpointer, syncer, close), each waiting for its previous call, so the queue is bounded by
 * construction rather than by a counter.
 */
export class Mutex {
  private held = false;
  private readonly waiters: Array<() => void> = [];

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.held) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.held = true;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.held = false;
    }
  }
}
