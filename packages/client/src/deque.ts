/**
 * A FIFO with O(1) push/shift and peeking at a prefix, for the record buffer. (Array#shift is
 * O(n), which matters at 10k buffered entries and a few hundred thousand records a second.)
 */
export class Deque<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    this.compact();
    return x;
  }

  /** The first n items (fewer if shorter), without removing them. */
  slice(n: number): T[] {
    return this.items.slice(this.head, this.head + n) as T[];
  }

  /** Removes the first n items. */
  drop(n: number): void {
    const end = Math.min(this.items.length, this.head + n);
    for (let i = this.head; i < end; i++) this.items[i] = undefined;
    this.head = end;
    this.compact();
  }

  /** Puts items back at the front, in order (a failed write returning its entries; rare). */
  prepend(items: readonly T[]): void {
    if (items.length === 0) return;
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
