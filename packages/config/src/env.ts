/**
 * Typed reading of environment variables. Every problem is collected so one start-up error lists
 * every bad key at once, instead of the operator fixing them one restart at a time.
 */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export class EnvReader {
  private readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(key: string): string | undefined {
    const v = this.env[key];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(key: string, fallback: string): string {
    return this.raw(key) ?? fallback;
  }

  optionalString(key: string): string | undefined {
    return this.raw(key);
  }

  int(key: string, fallback: number, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v)) {
      this.problems.push(`${key}=${JSON.stringify(v)} is not an integer`);
      return fallback;
    }
    const n = Number(v);
    if (opts.min !== undefined && n < opts.min) this.problems.push(`${key}=${n} is below the minimum ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) this.problems.push(`${key}=${n} is above the maximum ${opts.max}`);
    return n;
  }

  /** A decimal number (e.g. a ratio: 0.25). */
  number(key: string, fallback: number, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(v) || !Number.isFinite(n)) {
      this.problems.push(`${key}=${JSON.stringify(v)} is not a number`);
      return fallback;
    }
    if (opts.min !== undefined && n < opts.min) this.problems.push(`${key}=${n} is below the minimum ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) this.problems.push(`${key}=${n} is above the maximum ${opts.max}`);
    return n;
  }

  /** Sizes accept a plain byte count or a suffix: 512KiB, 16MiB, 1GiB, 10MB. */
  bytes(key: string, fallback: number): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const n = parseByteSize(v);
    if (n === undefined) {
      this.problems.push(`${key}=${JSON.stringify(v)} is not a size (use e.g. 1048576, 512KiB, 16MiB)`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${key}=${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
      return fallback;
    }
    return v as T;
  }

  list(key: string, fallback: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }

  url(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    try {
      new URL(v);
      return v;
    } catch {
      this.problems.push(`${key}=${JSON.stringify(v)} is not a URL`);
      return undefined;
    }
  }

  /** Adds a problem found by a cross-key check. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws one ConfigError naming every bad key, if any. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError([...this.problems]);
  }
}

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

export function parseByteSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(s.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase() || 'b';
  const f = UNITS[unit];
  if (f === undefined) return undefined;
  return Math.floor(Number(m[1]) * f);
}
