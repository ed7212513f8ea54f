// Points every workspace package's exports at the compiled JavaScript beside its sources
// (./src/x.ts -> ./src/x.js), for the distributed image (deploy/k8s/build-dist.sh). Run from the
// repository root after the compile has put the .js files next to the .ts ones.
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const rewrite = (v) => {
  if (typeof v === 'string') return /^\.\/src\/.*\.ts$/.test(v) ? v.replace(/\.ts$/, '.js') : v;
  if (Array.isArray(v)) return v.map(rewrite);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)]));
  return v;
};

let n = 0;
for (const dir of ['packages', 'services']) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    const next = { ...pkg, ...(pkg.exports ? { exports: rewrite(pkg.exports) } : {}), ...(pkg.main ? { main: rewrite(pkg.main) } : {}) };
    if (JSON.stringify(next) !== JSON.stringify(pkg)) {
      writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`);
      n++;
    }
  }
}
console.log(`compiled-exports: ${n} package.json file(s) point at .js`);
