import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsyncDir, writeFileAtomic } from './atomic-write.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fsutil-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const OLD = 'old\n'.repeat(50_000);
const NEW = 'new\n'.repeat(80_000);

describe('writeFileAtomic', () => {
  it('never shows readers a half-written target: old content until the rename, then all of the new', async () => {
    const target = join(dir, 'doc.txt');
    await writeFile(target, OLD);
    const seenWhileWriting: string[] = [];
    await writeFileAtomic(target, async (fh) => {
      // The new content goes out in pieces; between them the target is read as any reader would.
      for (let i = 0; i < 8; i++) {
        await fh.write(NEW.slice((i * NEW.length) / 8, ((i + 1) * NEW.length) / 8));
        seenWhileWriting.push(await readFile(target, 'utf8'));
      }
    });
    expect(seenWhileWriting).toHaveLength(8);
    for (const seen of seenWhileWriting) expect(seen === OLD).toBe(true);
    expect((await readFile(target, 'utf8')) === NEW).toBe(true);
    expect(await readdir(dir)).toEqual(['doc.txt']);
  });

  it('writes strings and bytes, creating the file with the given mode', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await writeFileAtomic(a, 'text', { mode: 0o600 });
    await writeFileAtomic(b, Buffer.from([1, 2, 3]), { durable: false });
    expect(await readFile(a, 'utf8')).toBe('text');
    expect([...(await readFile(b))]).toEqual([1, 2, 3]);
    expect((await stat(a)).mode & 0o777).toBe(0o600);
  });

  it('a writer that fails leaves the target as it was and no temp file behind', async () => {
    const target = join(dir, 'doc.txt');
    await writeFile(target, OLD);
    const failing = writeFileAtomic(target, async (fh) => {
      await fh.write('partial');
      throw new Error('disk full');
    });
    await expect(failing).rejects.toThrow('disk full');
    expect((await readFile(target, 'utf8')) === OLD).toBe(true);
    expect(await readdir(dir)).toEqual(['doc.txt']);
  });

  it('a rename that fails (the target is a directory) removes the temp file', async () => {
    const target = join(dir, 'taken');
    await mkdir(join(target, 'inside'), { recursive: true });
    await expect(writeFileAtomic(target, 'x')).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) });
    expect(await readdir(dir)).toEqual(['taken']);
  });

  it('fails without leaving anything when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('fsyncDir', () => {
  it('syncs a directory and reports one that does not exist', async () => {
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    await expect(fsyncDir(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
