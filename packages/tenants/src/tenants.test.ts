import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addTenantKey, keyMatches, keyPrefix, readTenants, revokeTenantKey } from './index.ts';

describe('tenant keys', () => {
  it('stores only the hash, never the key', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tenants-')), 'tenants.json');
    const { apiKey } = await addTenantKey(file, 'acme');
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(apiKey);
    const doc = await readTenants(file);
    const stored = doc.tenants['acme']?.keys[0];
    expect(stored && keyMatches(apiKey, stored.sha256)).toBe(true);
    expect(keyMatches(apiKey + 'x', stored?.sha256 ?? '')).toBe(false);
    expect(keyPrefix(apiKey)).toBe(stored?.prefix);
  });

  it('keeps several keys per tenant and revokes by prefix', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tenants-')), 'tenants.json');
    const a = await addTenantKey(file, 'acme');
    const b = await addTenantKey(file, 'acme');
    expect(b.created).toBe(false);
    expect(await revokeTenantKey(file, 'acme', a.prefix)).toBe(1);
    const keys = (await readTenants(file)).tenants['acme']?.keys ?? [];
    expect(keys.map((k) => k.revokedAt !== null)).toEqual([true, false]);
  });

  it('rejects tenant ids that could confuse paths or SQL', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tenants-')), 'tenants.json');
    await expect(addTenantKey(file, '../etc')).rejects.toThrow(/must match/);
    await expect(addTenantKey(file, "a' OR 1")).rejects.toThrow(/must match/);
  });
});

describe('concurrent writers', () => {
  it('twenty concurrent adds all land; none is lost to a read-modify-write race', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tenants-')), 'tenants.json');
    await Promise.all(Array.from({ length: 20 }, (_, i) => addTenantKey(file, `t${i}`)));
    expect(Object.keys((await readTenants(file)).tenants)).toHaveLength(20);
  });
});
