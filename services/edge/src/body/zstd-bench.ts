/**
 * CPU of decompressing a zstd request body (issue 10): fzstd, the pure-JavaScript decoder readBody
 * uses, against zstd-napi (native libzstd), on 1 MiB of NDJSON rows of the `pnpm bench` mix sent as
 * 64 KiB chunks, the way a request body arrives. zstd-napi is not a dependency of the project
 * (BENCHMARKS.md says how it was built here), and it also makes the compressed body, so the bench
 * needs it.
 *
 *   npx tsx services/edge/src/body/zstd-bench.ts
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Decompress } from 'fzstd';
import { makeEntry, mulberry32 } from '../../../../scripts/bench/workload.ts';

interface ZstdNapi {
  compress(b: Uint8Array, p: { compressionLevel: number }): Buffer;
  decompress(b: Uint8Array): Buffer;
  DecompressStream: new () => NodeJS.ReadWriteStream;
}

const ROUNDS = 30;

function body(): Buffer {
  const rng = mulberry32(20261201);
  const now = Date.now();
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < 1 << 20) {
    const line = JSON.stringify({ id: randomUUID(), ...makeEntry(rng, lines.length, now) });
    lines.push(line);
    bytes += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n');
}

/** Milliseconds of process CPU (user + system, every thread) per call, after a short warm-up. */
async function cpuMs(label: string, f: () => unknown): Promise<void> {
  for (let i = 0; i < 3; i++) await f();
  const start = process.cpuUsage();
  for (let i = 0; i < ROUNDS; i++) await f();
  const used = process.cpuUsage(start);
  console.log(`${label.padEnd(40)} ${((used.user + used.system) / 1000 / ROUNDS).toFixed(2)} ms CPU per MiB`);
}

async function main(): Promise<void> {
  let zstd: ZstdNapi;
  try {
    zstd = createRequire(import.meta.url)('zstd-napi') as ZstdNapi;
  } catch {
    console.error('zstd-napi is not installed (pnpm add zstd-napi --filter @ingest/edge); it is what this bench compares against');
    process.exitCode = 1;
    return;
  }
  const raw = body();
  const compressed = zstd.compress(raw, { compressionLevel: 3 });
  const chunks: Buffer[] = [];
  for (let i = 0; i < compressed.length; i += 65_536) chunks.push(compressed.subarray(i, i + 65_536));
  console.log(`${raw.length} bytes of NDJSON, ${compressed.length} compressed at level 3`);
  const check = (n: number): void => {
    if (n !== raw.length) throw new Error(`decompressed ${n} bytes, expected ${raw.length}`);
  };

  await cpuMs('fzstd Decompress, streamed (readBody)', () => {
    let n = 0;
    const d = new Decompress((b) => (n += b.length));
    for (const c of chunks) d.push(c);
    d.push(new Uint8Array(0), true);
    check(n);
  });
  await cpuMs('zstd-napi DecompressStream, streamed', async () => {
    const d = new zstd.DecompressStream();
    let n = 0;
    const done = new Promise<void>((resolve, reject) => {
      d.on('data', (b: Buffer) => (n += b.length));
      d.on('end', resolve);
      d.on('error', reject);
    });
    for (const c of chunks) d.write(c);
    d.end();
    await done;
    check(n);
  });
  await cpuMs('zstd-napi decompress, one buffer', () => check(zstd.decompress(compressed).length));
}

await main();
