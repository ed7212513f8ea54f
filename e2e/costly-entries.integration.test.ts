import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore } from './helpers.ts';

// Through the real edge → normalizer hop: what the producer sent must reach the rules intact.
describe('costly and overflowing entries through the edge', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let apiKey: string;

  beforeAll(async () => {
    store = await sharedStore();
    stack = await startInProcessStack({ store, env: { NORMALIZER_MAX_LABELS: '64' } });
    apiKey = await stack.tenant('costly');
  });
  afterAll(async () => {
    await stack.close();
    await store.close();
  });

  it('a 1e309 metric value is "not a finite number", not a missing field; the rest of the batch is taken', async () => {
    const now = Date.now();
    const raw = `[{"type":"metric","timestamp":${now},"data":{"name":"x","value":1e309}},{"type":"metric","timestamp":${now},"data":{"name":"y","value":1}}]`;
    const r = await postIngest(stack.edgeUrl, apiKey, undefined, { raw });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.rejected).toHaveLength(1);
    expect(r.body.rejected?.[0]).toMatchObject({ index: 0, code: 'INGEST_ERR_ENTRY_VALUE' });
    expect(r.body.rejected?.[0]?.message).toMatch(/^data\.value is not a finite number/);
  });

  it('an entry with 300k labels is refused by the configured label cap', async () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 300_000; i++) labels[`k${i}`] = 'v';
    const r = await postIngest(stack.edgeUrl, apiKey, [{ type: 'log', timestamp: Date.now(), data: { message: 'x' }, labels }]);
    // Nothing of the batch was taken: 400, with the per-entry reason.
    expect(r.status).toBe(400);
    expect(r.body.accepted).toBe(0);
    expect(r.body.rejected?.[0]).toMatchObject({ index: 0, code: 'INGEST_ERR_ENTRY_LABELS' });
    // The configured cap (NORMALIZER_MAX_LABELS), not the rules' built-in default.
    expect(r.body.rejected?.[0]?.message).toContain('at most 64 are accepted');
  });
});
