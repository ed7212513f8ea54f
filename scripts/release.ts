/**
 * Builds and packs the packages that ship outside this repository: the producer SDK
 * (@ingest/client) and the agent (@ingest/agent, bin `ingest-agent`).
 *
 *   tsx scripts/release.ts build [name…]      dist/ of each (default: all shipped packages)
 *   tsx scripts/release.ts pack [--out DIR]   check, build, and `pnpm pack` each into DIR (release/)
 *
 * Inside the workspace every package is imported as TypeScript source; only what ships is
 * compiled. Workspace packages a shipped one uses (@ingest/contracts; the SDK inside the agent) are
 * bundled into it, so a tarball installs with `npm` from the public registry alone. Third-party
 * dependencies stay external and must be declared: the build fails on a bare import that is not in
 * `dependencies`, or on anything bundled from node_modules.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { rollup } from 'rollup';
import { dts } from 'rollup-plugin-dts';

const run = promisify(execFile);
export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

interface Shipped {
  name: string;
  dir: string;
  /** library: ESM + CJS + one bundled .d.ts; cli: one executable ESM file. */
  kind: 'library' | 'cli';
  entry: string;
}

/** The packages that ship together, at one version (CHANGELOG.md names it). */
export const SHIPPED: readonly Shipped[] = [
  { name: '@ingest/client', dir: 'packages/client', kind: 'library', entry: 'src/index.ts' },
  { name: '@ingest/agent', dir: 'packages/agent', kind: 'cli', entry: 'src/main.ts' },
];

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  bin?: Record<string, string>;
}

export async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(path.join(REPO_ROOT, dir, 'package.json'), 'utf8')) as Manifest;
}

/**
 * The release checks that need no build: one version across the shipped packages, none of them
 * private, and a CHANGELOG section for that version. Returns the version.
 */
export async function checkRelease(): Promise<string> {
  const manifests = await Promise.all(SHIPPED.map((p) => readManifest(p.dir)));
  const versions = new Set(manifests.map((m) => m.version));
  if (versions.size !== 1) throw new Error(`shipped packages disagree on the version: ${manifests.map((m) => `${m.name}@${m.version}`).join(', ')}`);
  const [version] = [...versions] as [string];
  for (const m of manifests) if (m.private) throw new Error(`${m.name} is private: it cannot be published`);
  const changelog = await readFile(path.join(REPO_ROOT, 'CHANGELOG.md'), 'utf8');
  if (!new RegExp(`^## ${version.replace(/\./g, '\\.')}\\b`, 'm').test(changelog)) throw new Error(`CHANGELOG.md has no "## ${version}" section`);
  return version;
}

const BUILTINS = new Set(builtinModules);

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`). */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isExternal(spec: string, deps: ReadonlySet<string>): boolean {
  return spec.startsWith('node:') || BUILTINS.has(spec) || deps.has(packageOf(spec));
}

/**
 * Fails when the output holds code from node_modules (an undeclared third-party import). Inputs
 * that tree-shaking dropped (0 bytes in the output) do not count.
 */
function checkBundled(name: string, meta: Metafile | undefined): void {
  if (!meta) throw new Error(`${name}: esbuild returned no metafile`);
  const used = Object.values(meta.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, v]) => v.bytesInOutput > 0).map(([f]) => f));
  const foreign = used.filter((f) => f.includes('node_modules/'));
  if (foreign.length > 0) throw new Error(`${name}: bundled third-party code (declare it in dependencies instead): ${foreign.slice(0, 5).join(', ')}`);
}

export async function buildPackage(p: Shipped): Promise<void> {
  const root = path.join(REPO_ROOT, p.dir);
  const m = await readManifest(p.dir);
  const deps = new Set(Object.keys(m.dependencies ?? {}));
  const dist = path.join(root, 'dist');
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const common = {
    absWorkingDir: root,
    entryPoints: [path.join(root, p.entry)],
    bundle: true,
    platform: 'node' as const,
    target: 'node20',
    // Everything not declared is bundled, so a workspace-only package never leaks into an import.
    external: [...deps].flatMap((d) => [d, `${d}/*`]),
    metafile: true,
    logLevel: 'warning' as const,
    legalComments: 'none' as const,
  };
  if (p.kind === 'library') {
    const esm = await build({ ...common, format: 'esm', outfile: path.join(dist, 'index.js') });
    const cjs = await build({ ...common, format: 'cjs', outfile: path.join(dist, 'index.cjs') });
    checkBundled(p.name, esm.metafile);
    checkBundled(p.name, cjs.metafile);
    // One declaration file with the workspace types it uses inlined (EntryType, EntryRejection).
    const bundle = await rollup({
      input: path.join(root, p.entry),
      plugins: [dts({ respectExternal: true, tsconfig: path.join(REPO_ROOT, 'tsconfig.base.json'), compilerOptions: { noEmit: false } })],
      external: (id) => isExternal(id, deps),
      onwarn: (w) => {
        throw new Error(`${p.name} declarations: ${w.message}`);
      },
    });
    await bundle.write({ file: path.join(dist, 'index.d.ts'), format: 'es' });
    await bundle.close();
    // CommonJS consumers resolve types through `require` → index.d.cts; the content is the same.
    await writeFile(path.join(dist, 'index.d.cts'), await readFile(path.join(dist, 'index.d.ts')));
  } else {
    const bin = Object.values(m.bin ?? {})[0];
    if (!bin) throw new Error(`${p.name}: a cli package needs a bin`);
    const out = path.join(root, bin);
    const r = await build({ ...common, format: 'esm', outfile: out, banner: { js: '#!/usr/bin/env node' } });
    checkBundled(p.name, r.metafile);
    await chmod(out, 0o755);
  }
}

export interface Packed {
  name: string;
  file: string;
  /** Bytes of the .tgz. */
  packedBytes: number;
  /** Bytes of the files in it. */
  unpackedBytes: number;
  files: string[];
}

/** Names and sizes of the files in a .tgz, as `tar -tvzf` lists them. */
async function listTarball(file: string): Promise<Array<{ name: string; size: number }>> {
  const { stdout } = await run('tar', ['-tvzf', file], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('-'))
    .map((l) => {
      // -rw-r--r-- 0/0    1234 1985-10-26 08:15 package/LICENSE
      const f = l.trim().split(/\s+/);
      return { name: f.slice(5).join(' '), size: Number(f[2]) };
    });
}

/** Checks, builds and packs every shipped package into `outDir`. */
export async function packAll(outDir: string): Promise<Packed[]> {
  const version = await checkRelease();
  await mkdir(outDir, { recursive: true });
  const packed: Packed[] = [];
  for (const p of SHIPPED) {
    await buildPackage(p);
    // pnpm pack applies publishConfig (exports, main, types → dist) and rewrites workspace: ranges.
    const { stdout } = await run('pnpm', ['pack', '--pack-destination', outDir], { cwd: path.join(REPO_ROOT, p.dir), maxBuffer: 16 * 1024 * 1024 });
    const file = stdout.trim().split('\n').pop()!.trim();
    const entries = await listTarball(file);
    packed.push({ name: p.name, file, packedBytes: (await stat(file)).size, unpackedBytes: entries.reduce((n, e) => n + e.size, 0), files: entries.map((e) => e.name) });
  }
  process.stderr.write(`release ${version}:\n${packed.map((x) => `  ${path.basename(x.file).padEnd(28)} packed ${kib(x.packedBytes)}, unpacked ${kib(x.unpackedBytes)}, ${x.files.length} files`).join('\n')}\n`);
  return packed;
}

export function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === 'build') {
    const names = rest.length > 0 ? rest : SHIPPED.map((p) => p.name);
    for (const n of names) {
      const p = SHIPPED.find((x) => x.name === n);
      if (!p) throw new Error(`not a shipped package: ${n} (one of ${SHIPPED.map((x) => x.name).join(', ')})`);
      await buildPackage(p);
    }
    return;
  }
  if (cmd === 'pack') {
    const i = rest.indexOf('--out');
    const out = path.resolve(i >= 0 && rest[i + 1] ? rest[i + 1]! : path.join(REPO_ROOT, 'release'));
    const packed = await packAll(out);
    for (const x of packed) process.stdout.write(`${x.file}\n`);
    return;
  }
  throw new Error('usage: release.ts build [name…] | pack [--out DIR]');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`release: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
