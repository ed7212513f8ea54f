import { describe, expect, it } from 'vitest';
import { emptyCutover, type CutoverDoc } from '@ingest/tenants';
import { checkEdges, treatment, withRoute, type EdgeView } from './cutover-plan.ts';

const TENANTS = ['acme', 'beta', 'gamma'];
const NO_LEGACY = { configured: false, url: null, reachable: null };
const LEGACY_UP = { configured: true, url: 'http://legacy/', reachable: true };
const LEGACY_DOWN = { configured: true, url: 'http://legacy/', reachable: false, error: 'ECONNREFUSED' };

const set = (tenants: Record<string, 'v2' | 'mirror'>): CutoverDoc => {
  let d = emptyCutover();
  for (const [t, s] of Object.entries(tenants)) d = withRoute(d, t, s);
  return d;
};
const edge = (legacy: EdgeView['legacy']): EdgeView => ({ url: 'http://edge', generation: 0, ...(legacy ? { legacy } : {}) });

describe('treatment (the edge rule applied to a planned set)', () => {
  it('an empty set without LEGACY_URL is no migration: everyone is taken live', () => {
    for (const t of TENANTS) expect(treatment(emptyCutover(), t, NO_LEGACY)).toBe('live');
  });
  it('a non-empty set without LEGACY_URL: the cut-over tenant live, everyone else (mirrored too) refused', () => {
    const d = set({ acme: 'v2', beta: 'mirror' });
    expect(TENANTS.map((t) => treatment(d, t, NO_LEGACY))).toEqual(['live', 'shed', 'shed']);
  });
  it('with legacy reachable the set is enforced even when empty; unreachable legacy means refused', () => {
    expect(TENANTS.map((t) => treatment(emptyCutover(), t, LEGACY_UP))).toEqual(['legacy', 'legacy', 'legacy']);
    expect(TENANTS.map((t) => treatment(set({ acme: 'v2' }), t, LEGACY_DOWN))).toEqual(['live', 'shed', 'shed']);
  });
});

describe('checkEdges', () => {
  it('add with no LEGACY_URL on an edge: not ok, every other tenant newly refused', () => {
    const c = checkEdges(emptyCutover(), set({ acme: 'v2' }), TENANTS, [edge(NO_LEGACY)]);
    expect(c).toMatchObject({ checked: true, ok: false });
    expect(c.edges[0]).toMatchObject({ checked: true, enforcing: { before: false, after: true }, newlyShed: ['beta', 'gamma'], moves: [{ from: 'live', to: 'shed', tenants: ['beta', 'gamma'] }] });
  });

  it('mirror with no LEGACY_URL sheds the others, and the mirrored tenant itself', () => {
    const c = checkEdges(emptyCutover(), set({ acme: 'mirror' }), TENANTS, [edge(NO_LEGACY)]);
    expect(c.ok).toBe(false);
    expect(c.edges[0]).toMatchObject({ newlyShed: ['acme', 'beta', 'gamma'] });
  });

  it('removing the last tenant without LEGACY_URL: the edge stops enforcing and serves everyone; ok', () => {
    const before = set({ acme: 'v2' });
    const c = checkEdges(before, withRoute(before, 'acme', 'legacy'), TENANTS, [edge(NO_LEGACY)]);
    expect(c).toMatchObject({ checked: true, ok: true });
    expect(c.edges[0]).toMatchObject({ enforcing: { before: true, after: false }, newlyShed: [], moves: [{ from: 'shed', to: 'live', tenants: ['beta', 'gamma'] }] });
  });

  it('legacy reachable: add moves one tenant from legacy to live and is ok', () => {
    const c = checkEdges(emptyCutover(), set({ acme: 'v2' }), TENANTS, [edge(LEGACY_UP)]);
    expect(c).toMatchObject({ checked: true, ok: true });
    expect(c.edges[0]).toMatchObject({ moves: [{ from: 'legacy', to: 'live', tenants: ['acme'] }] });
  });

  it('legacy unreachable: a change that makes nothing worse is ok (tenants already refused are reported); a rollback into it is not', () => {
    const add = checkEdges(emptyCutover(), set({ acme: 'v2' }), TENANTS, [edge(LEGACY_DOWN)]);
    expect(add).toMatchObject({ ok: true, edges: [{ stillShed: ['beta', 'gamma'], newlyShed: [] }] });
    const before = set({ acme: 'v2' });
    expect(checkEdges(before, withRoute(before, 'acme', 'legacy'), TENANTS, [edge(LEGACY_DOWN)])).toMatchObject({ ok: false, edges: [{ newlyShed: ['acme'] }] });
  });

  it('one bad edge among good ones fails the check; no edges, a silent edge or an edge without the legacy report is "not checked"', () => {
    const after = set({ acme: 'v2' });
    expect(checkEdges(emptyCutover(), after, TENANTS, [edge(LEGACY_UP), { ...edge(NO_LEGACY), url: 'http://edge2' }])).toMatchObject({ ok: false, reason: expect.stringContaining('by 1 edge(s)') as unknown });
    expect(checkEdges(emptyCutover(), after, TENANTS, [])).toMatchObject({ checked: false, ok: false, reason: expect.stringContaining('CUTOVER_EDGE_URLS') as unknown });
    expect(checkEdges(emptyCutover(), after, TENANTS, [{ url: 'http://x', error: 'ECONNREFUSED' }])).toMatchObject({ checked: false, ok: false, edges: [{ checked: false, reason: 'ECONNREFUSED' }] });
    expect(checkEdges(emptyCutover(), after, TENANTS, [edge(undefined)])).toMatchObject({ checked: false, ok: false });
  });
});
