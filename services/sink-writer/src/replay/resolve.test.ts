import { describe, expect, it } from 'vitest';
import { parseReplayRequest } from './request.ts';
import { firstAtOrAfter, resolveRange } from './resolve.ts';
import { FakeAdmin, type FakeMessage } from '../../test/replay-fakes.ts';

const T0 = Date.UTC(2026, 10, 20, 10);
const TOPIC = 'telemetry.v2';

/** n messages from `low`, one per `stepMs`, several sharing a millisecond when stepMs is 0.5. */
function msgs(n: number, low = 0, stepMs = 1): FakeMessage[] {
  return Array.from({ length: n }, (_, i) => ({ offset: low + i, timestamp: T0 + Math.floor(i * stepMs) }));
}

const req = (from: string, to: string, extra: Record<string, unknown> = {}) => parseReplayRequest({ from, to, ...extra });

describe('resolveRange (the planner: --from/--to → exact offsets per partition)', () => {
  it('applies an offset range to each selected partition, both ends included', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100)).add(1, msgs(50));
    const r = await resolveRange(admin, TOPIC, req('10', '19'));
    expect(r.partitions.map((p) => [p.partition, p.first, p.last, p.offsets])).toEqual([
      [0, 10, 19, 10],
      [1, 10, 19, 10],
    ]);
    expect(r.offsets).toBe(20);
    expect(r.inclusive).toMatch(/both included/);
  });

  it('says which offsets are retained when a bound is outside them', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100, 500)).add(1, [], 0, 0);
    await expect(resolveRange(admin, TOPIC, req('10', '550', { partitions: [0] }))).rejects.toThrow(
      /--from=10 is outside the retained range of telemetry.v2 partition 0 \(500..599\).*partition 0: 500..599; partition 1: empty, next offset 0/,
    );
    await expect(resolveRange(admin, TOPIC, req('550', '600', { partitions: [0] }))).rejects.toThrow(/--to=600 is outside/);
  });

  it('names the partitions that exist when asked for an unknown one', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(10)).add(1, msgs(10)).add(2, msgs(10));
    await expect(resolveRange(admin, TOPIC, req('0', '1', { partitions: [1, 7] }))).rejects.toThrow('unknown partition 7: telemetry.v2 has partitions 0, 1, 2');
  });

  it('resolves earliest and latest to the retained ends, and an empty partition to nothing', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100, 40)).add(1, [], 7, 7);
    const r = await resolveRange(admin, TOPIC, req('earliest', 'latest'));
    expect(r.partitions[0]).toMatchObject({ first: 40, last: 139, offsets: 100 });
    expect(r.partitions[1]).toMatchObject({ offsets: 0 });
    expect(r.partitions[1]?.resolution.from).toMatch(/empty/);
  });

  it('resolves a time window [from, to) by log append time, with many entries per millisecond', async () => {
    // 10,000 messages, two per millisecond: offsets 2k and 2k+1 share T0 + k.
    const admin = new FakeAdmin(TOPIC).add(0, msgs(10_000, 0, 0.5));
    const from = new Date(T0 + 1000).toISOString();
    const to = new Date(T0 + 2000).toISOString();
    const r = await resolveRange(admin, TOPIC, req(from, to));
    expect(r.partitions[0]).toMatchObject({ first: 2000, last: 3999, offsets: 2000 });
    expect(r.partitions[0]?.resolution.from).toContain('→ offset 2000, the first entry logged at or after it');
    expect(r.partitions[0]?.resolution.to).toContain('(exclusive) → offset 3999');
  });

  it('finds a time boundary with a logarithmic number of reads', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(200_000));
    const hit = await firstAtOrAfter(admin, TOPIC, { partition: 0, low: 0, high: 200_000 }, T0 + 177_777);
    expect(hit.offset).toBe(177_777);
    expect(admin.reads).toBeLessThan(12);
  });

  it('gives an empty range for a window with nothing in it, and refuses one reaching before retention', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100, 0)).add(1, msgs(100, 300));
    const later = new Date(T0 + 10_000).toISOString();
    const r = await resolveRange(admin, TOPIC, req(later, 'latest', { partitions: [0] }));
    expect(r.partitions[0]).toMatchObject({ offsets: 0 });
    // Partition 1 starts at 300 (older offsets deleted); its oldest entry is logged at T0.
    const before = new Date(T0 - 1).toISOString();
    await expect(resolveRange(admin, TOPIC, req(before, 'latest', { partitions: [1] }))).rejects.toThrow(/oldest retained entry \(offset 300\).*--from=earliest/);
    // Partition 0 never lost anything: an early --from just starts at its beginning.
    expect((await resolveRange(admin, TOPIC, req(before, 'latest', { partitions: [0] }))).partitions[0]).toMatchObject({ first: 0, last: 99 });
  });

  it('refuses a time window that ends before the first logged entry, naming when the log begins', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100, 0)).add(1, msgs(100, 0));
    const early = (ms: number) => new Date(T0 - ms).toISOString();
    await expect(resolveRange(admin, TOPIC, req(early(60_000), early(1_000)))).rejects.toThrow(
      /--to=.* is before the first retained entry of telemetry.v2, so the window holds nothing \(partition 0: offset 0 logged at 2026-11-20T10:00:00.000Z; partition 1/,
    );
    // A window that reaches the first entry in one partition is a real (partial) window.
    const late = new FakeAdmin(TOPIC).add(0, msgs(100, 0)).add(1, [{ offset: 0, timestamp: T0 + 10_000 }]);
    const r = await resolveRange(late, TOPIC, req(early(60_000), new Date(T0 + 5).toISOString()));
    expect(r.partitions.map((p) => p.offsets)).toEqual([5, 0]);
  });

  it('refuses --from after --to once offsets are known (latest vs an offset)', async () => {
    const admin = new FakeAdmin(TOPIC).add(0, msgs(100));
    await expect(resolveRange(admin, TOPIC, req('latest', '10'))).rejects.toThrow(/--from is after --to in partition 0/);
  });
});
