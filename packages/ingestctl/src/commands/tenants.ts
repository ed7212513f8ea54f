import { addTenantKey, readCutover, readTenants, revokeTenantKey, routeOf } from '@ingest/tenants';
import { parse, table, tenantsFile, UsageError, type Command, type Io } from '../cli.ts';
import { cutover, cutoverEnv } from './cutover.ts';
import { EXIT } from '../exit-codes.ts';

/**
 * The load balancer routes on key prefixes rendered from the cut-over set, so a key added to (or
 * revoked from) a tenant that is cut over or mirrored must be re-rendered, or the new key would
 * still go to legacy. Same code path as `ingestctl cutover sync`.
 */
async function resyncIfRouted(io: Io, tenant: string, json: boolean): Promise<void> {
  const ce = cutoverEnv(io.env);
  const route = routeOf(await readCutover(ce.files.cutoverFile), tenant);
  if (route === 'legacy') return;
  const quiet: Io = { ...io, out: json ? () => undefined : (s) => io.out(`cutover: ${route} tenant, routes re-rendered — ${s.split('\n').join(' ')}`) };
  const code = await cutover.run(['sync'], quiet);
  if (code !== EXIT.OK) io.err(`the key change is saved, but re-rendering the cut-over routes failed; run \`ingestctl cutover sync\``);
}

const HELP = `ingestctl tenants — manage tenants and their API keys

  ingestctl tenants add <tenant> [--eps N] [--bps N] [--rps N] [--qps N] [--json]
      create the tenant (or add a key to it); prints the new API key once. Limits per second:
      --eps entries, --bps bytes, --rps ingest requests, --qps GET /v2/query requests (its own bucket)
  ingestctl tenants list [--json]
  ingestctl tenants revoke-key <tenant> <key-prefix> [--json]

Keys take effect at every edge within about a second; only their SHA-256 is stored.
The file is TENANTS_FILE (default \${INGEST_DATA_DIR:-.data}/tenants.json).`;

export const tenants: Command = {
  name: 'tenants',
  summary: 'add tenants, list them, revoke API keys',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { eps: { type: 'string' }, bps: { type: 'string' }, rps: { type: 'string' }, qps: { type: 'string' } });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const [sub, ...rest] = positionals;
    const file = tenantsFile(io.env);
    switch (sub) {
      case 'add': {
        const id = rest[0];
        if (!id) throw new UsageError('tenants add needs a tenant id');
        const num = (v: string | undefined, name: string) => {
          if (v === undefined) return undefined;
          const n = Number(v);
          if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number`);
          return n;
        };
        const limits = {
          ...(values.eps ? { entriesPerSecond: num(values.eps, 'eps') } : {}),
          ...(values.bps ? { bytesPerSecond: num(values.bps, 'bps') } : {}),
          ...(values.rps ? { requestsPerSecond: num(values.rps, 'rps') } : {}),
          ...(values.qps ? { queriesPerSecond: num(values.qps, 'qps') } : {}),
        };
        const r = await addTenantKey(file, id, Object.keys(limits).length ? limits : undefined);
        if (values.json) io.out(JSON.stringify({ tenant: id, apiKey: r.apiKey }));
        else io.out(`${r.created ? 'created tenant' : 'added a key to tenant'} ${id}\nAPI key (shown once, store it now):\n  ${r.apiKey}`);
        await resyncIfRouted(io, id, values.json === true);
        return EXIT.OK;
      }
      case 'list': {
        const doc = await readTenants(file);
        const rows = Object.entries(doc.tenants).map(([id, t]) => ({
          tenant: id,
          keys: t.keys.filter((k) => k.revokedAt === null).length,
          revoked: t.keys.filter((k) => k.revokedAt !== null).length,
          prefixes: t.keys.filter((k) => k.revokedAt === null).map((k) => k.prefix).join(','),
          limits: t.limits,
        }));
        io.out(values.json ? JSON.stringify({ tenants: rows }) : table(rows.map((r) => ({ ...r, limits: JSON.stringify(r.limits) }))));
        return EXIT.OK;
      }
      case 'revoke-key': {
        const [id, prefix] = rest;
        if (!id || !prefix) throw new UsageError('tenants revoke-key needs <tenant> <key-prefix>');
        const n = await revokeTenantKey(file, id, prefix);
        if (n > 0) await resyncIfRouted(io, id, values.json === true);
        if (values.json) io.out(JSON.stringify({ tenant: id, revoked: n }));
        else io.out(n === 0 ? `no live key of ${id} starts with ${prefix}` : `revoked ${n} key(s) of ${id}`);
        return n === 0 ? EXIT.CHECK_FAILED : EXIT.OK;
      }
      default:
        throw new UsageError(sub ? `unknown tenants command "${sub}"` : 'tenants needs a command');
    }
  },
};
