import type { Partition } from './partition.ts';

/**
 * An open topic: its partitions and the in-process wake-up for consumers. `version` moves on every
 * append so a consumer can tell "nothing new since I looked" without a lost-wakeup race.
 */
export class TopicState {
  version = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly partitions: Partition[],
  ) {}

  notify(): void {
    this.version++;
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  addWaiter(w: () => void): void {
    this.waiters.add(w);
  }

  removeWaiter(w: () => void): void {
    this.waiters.delete(w);
  }
}
