import { describe, expect, it } from 'vitest';
import { RequestBodies, WORKLOAD, makeEntry, mulberry32 } from './workload.ts';

describe('the bench workload', () => {
  it('is the same content for the same seed', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    expect(makeEntry(a, 3, 1_000_000)).toEqual(makeEntry(b, 3, 1_000_000));
  });

  it('sends 500 entries per request of about 400 bytes each, all five types, ids unique across requests', () => {
    const bodies = new RequestBodies('run1', { templates: 4, now: Date.UTC(2026, 0, 1) });
    const ids = new Set<string>();
    const types = new Set<string>();
    let bytes = 0;
    for (let r = 0; r < 9; r++) {
      const body = bodies.next();
      bytes += Buffer.byteLength(body);
      const entries = JSON.parse(body) as Array<{ id: string; type: string; labels: Record<string, string> }>;
      expect(entries).toHaveLength(WORKLOAD.entriesPerRequest);
      for (const e of entries) {
        ids.add(e.id);
        types.add(e.type);
        expect(Object.keys(e.labels).length).toBeGreaterThan(0);
      }
    }
    expect(ids.size).toBe(9 * WORKLOAD.entriesPerRequest);
    expect([...types].sort()).toEqual(['alert', 'event', 'health', 'log', 'metric']);
    const perEntry = bytes / (9 * WORKLOAD.entriesPerRequest);
    expect(perEntry).toBeGreaterThan(370);
    expect(perEntry).toBeLessThan(430);
  });
});
