import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IngestError } from '@ingest/contracts';
import { BodyMeter } from './body-meter.ts';

function source(): Readable {
  return new Readable({ read() {} });
}

/** Collects what passes through; resolves with the bytes, or the error code the meter failed with. */
function drain(m: BodyMeter): Promise<number | string> {
  return new Promise((resolve) => {
    let n = 0;
    m.on('data', (c: Buffer) => (n += c.byteLength));
    m.once('end', () => resolve(n));
    m.once('error', (e) => resolve(e instanceof IngestError ? e.code : e.message));
  });
}

describe('BodyMeter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('cuts a trickle with INGEST_ERR_BODY_TOO_SLOW once the grace and what it sent are used up', async () => {
    const src = source();
    const m = new BodyMeter(src, { minBytesPerSecond: 100, graceMs: 1000 });
    const out = drain(m);
    src.push(Buffer.alloc(50)); // buys 500 ms beyond the grace
    await vi.advanceTimersByTimeAsync(1400);
    expect(m.cut).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(await out).toBe('INGEST_ERR_BODY_TOO_SLOW');
    expect(m.cut?.statusCode).toBe(408);
    // The socket side is left alone so the answer can still be written.
    expect(src.destroyed).toBe(false);
  });

  it('never cuts a body that keeps up, however long it takes', async () => {
    const src = source();
    const m = new BodyMeter(src, { minBytesPerSecond: 100, graceMs: 1000 });
    const out = drain(m);
    for (let i = 0; i < 60; i++) {
      src.push(Buffer.alloc(20)); // 200 bytes/s for 6 s
      await vi.advanceTimersByTimeAsync(100);
    }
    src.push(null);
    expect(await out).toBe(1200);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends with an error when the client goes away mid-body, and abort() after the end does nothing', async () => {
    const src = source();
    const m = new BodyMeter(src, { minBytesPerSecond: 100, graceMs: 1000 });
    const out = drain(m);
    src.push(Buffer.alloc(10));
    src.destroy();
    expect(await out).toMatch(/closed the connection/);
    m.abort(new IngestError('INGEST_ERR_SHUTTING_DOWN'));
    expect(m.cut).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('abort() cuts a body being read with the given error (the drain deadline uses it)', async () => {
    const src = source();
    const m = new BodyMeter(src, { minBytesPerSecond: 1, graceMs: 60_000 });
    const out = drain(m);
    src.push(Buffer.alloc(10));
    await vi.advanceTimersByTimeAsync(1);
    m.abort(new IngestError('INGEST_ERR_SHUTTING_DOWN'));
    m.abort(new IngestError('INGEST_ERR_BODY_TOO_SLOW'));
    expect(await out).toBe('INGEST_ERR_SHUTTING_DOWN');
    expect(m.bytesReceived).toBe(10);
  });
});
