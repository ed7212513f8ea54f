import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const read = (rel: string) => readFile(new URL(rel, import.meta.url), 'utf8');

describe('README lists where things listen', () => {
  it('every port and URL variable the config reads has a README row with its default', async () => {
    const [config, readme] = await Promise.all([read('./config.ts'), read('../../../README.md')]);
    const vars = [...config.matchAll(/r\.(int|url)\('([A-Z_]+(?:_PORT|_URL|_ENDPOINT))'(?:,\s*(\d+))?/g)];
    expect(vars.length).toBeGreaterThanOrEqual(8);
    for (const [, , name, port] of vars) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      expect(row, `README.md has no row for ${name}`).toBeDefined();
      if (port) expect(row, name).toContain(`\`${port}\``);
    }
  });
});
