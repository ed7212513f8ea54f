import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolledFile } from './polled-file.ts';

const readJson = async (f: string) => JSON.parse(await readFile(f, 'utf8')) as { n: number };

describe('PolledFile', () => {
  it('picks up a change, keeps the last good value when the file breaks, and says why', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'polled-')), 'x.json');
    await writeFile(file, '{"n":1}');
    const seen: number[] = [];
    const p = new PolledFile(file, 60_000, readJson, (v) => seen.push(v.n));
    await p.start();
    expect(p.current?.n).toBe(1);

    await writeFile(file, '{"n":22}'); // size changes, so the version does even within one mtime tick
    await p.reload();
    expect(p.current?.n).toBe(22);

    await writeFile(file, '{"n":');
    await p.reload();
    expect(p.current?.n).toBe(22);
    expect(p.lastError).toMatch(/JSON/);
    expect(seen).toEqual([1, 22]);
    p.close();
    p.close();
  });

  it('is not loaded until a read succeeds', async () => {
    const p = new PolledFile(path.join(tmpdir(), 'does-not-exist-' + Date.now()), 60_000, readJson);
    await p.start();
    expect(p.loadedOnce).toBe(false);
    expect(p.lastError).toMatch(/ENOENT/);
    p.close();
  });
});
