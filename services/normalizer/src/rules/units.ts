/**
 * Unit conversion to the canonical units of the store: seconds, bytes, bytes/s, ratio, hz, celsius,
 * or '' for unitless. Symbols are matched case-sensitively, because case carries meaning in them
 * (MB megabytes vs Mb megabits, m minutes vs M); spelled-out words are matched case-insensitively.
 */

export type CanonicalUnit = 's' | 'bytes' | 'bytes/s' | 'ratio' | 'hz' | 'celsius' | '';

export interface UnitRule {
  canonical: CanonicalUnit;
  /** value × mul ÷ div. Division by an exact integer keeps 1500 ms → 1.5 s exact (1500 × 0.001 is not). */
  mul: number;
  div: number;
}

export type UnitConversion = { ok: true; value: number; unit: CanonicalUnit; converted: boolean } | { ok: false; reason: string };

const rule = (canonical: CanonicalUnit, mul = 1, div = 1): UnitRule => ({ canonical, mul, div });

/** Case-sensitive symbols. UCUM spellings (By, KiBy, {annotation}) are here for OpenTelemetry producers. */
const SYMBOLS: Record<string, UnitRule> = {
  '': rule(''),
  '1': rule(''),

  ns: rule('s', 1, 1e9),
  us: rule('s', 1, 1e6),
  'µs': rule('s', 1, 1e6), // U+00B5 micro sign
  'μs': rule('s', 1, 1e6), // U+03BC Greek mu, which keyboards and UCUM libraries also produce
  ms: rule('s', 1, 1e3),
  s: rule('s'),
  sec: rule('s'),
  m: rule('s', 60),
  min: rule('s', 60),
  h: rule('s', 3600),
  hr: rule('s', 3600),
  d: rule('s', 86400),

  '%': rule('ratio', 1, 100),

  Hz: rule('hz'),
  kHz: rule('hz', 1e3),
  MHz: rule('hz', 1e6),
  GHz: rule('hz', 1e9),

  '°C': rule('celsius'),
  degC: rule('celsius'),
  Cel: rule('celsius'),
};

/** Sizes, in bytes per unit; each also yields a rate `<unit>/s`. */
const SIZES: Record<string, number> = {
  B: 1,
  By: 1,
  kB: 1e3,
  KB: 1e3,
  kBy: 1e3,
  KBy: 1e3,
  KiB: 1024,
  KiBy: 1024,
  MB: 1e6,
  MBy: 1e6,
  MiB: 1024 ** 2,
  MiBy: 1024 ** 2,
  GB: 1e9,
  GBy: 1e9,
  GiB: 1024 ** 3,
  GiBy: 1024 ** 3,
  TB: 1e12,
  TBy: 1e12,
  TiB: 1024 ** 4,
  TiBy: 1024 ** 4,
  PB: 1e15,
  PiB: 1024 ** 5,
};

/** Bit sizes, in bits per unit; converted to bytes by ÷ 8. */
const BITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  Kbit: 1e3,
  Kibit: 1024,
  Mbit: 1e6,
  Mibit: 1024 ** 2,
  Gbit: 1e9,
  Gibit: 1024 ** 3,
  Tbit: 1e12,
  Tibit: 1024 ** 4,
};

/** Networking's per-second bit rates, spelled without a slash. */
const BIT_RATES: Record<string, number> = { bps: 1, kbps: 1e3, Kbps: 1e3, Mbps: 1e6, Gbps: 1e9, Tbps: 1e12 };

/** Case-insensitive words (matched after lower-casing). */
const WORDS: Record<string, UnitRule> = {
  count: rule(''),
  none: rule(''),
  unitless: rule(''),

  nanosecond: rule('s', 1, 1e9),
  nanoseconds: rule('s', 1, 1e9),
  microsecond: rule('s', 1, 1e6),
  microseconds: rule('s', 1, 1e6),
  millisecond: rule('s', 1, 1e3),
  milliseconds: rule('s', 1, 1e3),
  second: rule('s'),
  seconds: rule('s'),
  secs: rule('s'),
  minute: rule('s', 60),
  minutes: rule('s', 60),
  mins: rule('s', 60),
  hour: rule('s', 3600),
  hours: rule('s', 3600),
  hrs: rule('s', 3600),
  day: rule('s', 86400),
  days: rule('s', 86400),

  byte: rule('bytes'),
  bytes: rule('bytes'),
  kilobytes: rule('bytes', 1e3),
  kibibytes: rule('bytes', 1024),
  megabytes: rule('bytes', 1e6),
  mebibytes: rule('bytes', 1024 ** 2),
  gigabytes: rule('bytes', 1e9),
  gibibytes: rule('bytes', 1024 ** 3),
  terabytes: rule('bytes', 1e12),
  tebibytes: rule('bytes', 1024 ** 4),
  bits: rule('bytes', 1, 8),

  'bytes/s': rule('bytes/s'),
  'bytes/sec': rule('bytes/s'),
  'bytes/second': rule('bytes/s'),

  percent: rule('ratio', 1, 100),
  pct: rule('ratio', 1, 100),
  ratio: rule('ratio'),
  fraction: rule('ratio'),

  hz: rule('hz'),
  hertz: rule('hz'),

  celsius: rule('celsius'),
};

/** Spellings we refuse on purpose, with what to send instead. A Map, so "constructor" is not a hit. */
const AMBIGUOUS = new Map<string, string>(Object.entries({
  b: 'use "B" or "bytes" for bytes, "bit" for bits',
  kb: 'use "kB" (1000 bytes), "KiB" (1024 bytes) or "kbit"',
  Kb: 'use "KB" (1000 bytes), "KiB" (1024 bytes) or "Kbit"',
  mb: 'use "MB" (megabytes), "MiB" (mebibytes) or "Mbit" (megabits)',
  Mb: 'use "MB" (megabytes), "MiB" (mebibytes) or "Mbit" (megabits)',
  gb: 'use "GB" (gigabytes), "GiB" (gibibytes) or "Gbit" (gigabits)',
  Gb: 'use "GB" (gigabytes), "GiB" (gibibytes) or "Gbit" (gigabits)',
  tb: 'use "TB", "TiB" or "Tbit"',
  Tb: 'use "TB", "TiB" or "Tbit"',
  M: 'use "min" for minutes or "MB"/"MiB" for sizes',
  F: 'Fahrenheit is not converted; send Celsius as "celsius"',
  K: 'Kelvin is not converted; send Celsius as "celsius"',
}));

function buildTable(): Map<string, UnitRule> {
  const table = new Map<string, UnitRule>(Object.entries(SYMBOLS));
  for (const [unit, bytes] of Object.entries(SIZES)) {
    table.set(unit, rule('bytes', bytes));
    table.set(`${unit}/s`, rule('bytes/s', bytes));
  }
  for (const [unit, bits] of Object.entries(BITS)) {
    table.set(unit, rule('bytes', bits, 8));
    table.set(`${unit}/s`, rule('bytes/s', bits, 8));
  }
  for (const [unit, bits] of Object.entries(BIT_RATES)) table.set(unit, rule('bytes/s', bits, 8));
  return table;
}

const TABLE = buildTable();
const WORD_TABLE = new Map<string, UnitRule>(Object.entries(WORDS));

/** Every accepted spelling and its rule, for docs and tests. Words are listed in lower case. */
export function acceptedUnits(): ReadonlyMap<string, UnitRule> {
  return new Map([...TABLE, ...WORD_TABLE]);
}

const MAX_UNIT_LENGTH = 64;
// UCUM annotations such as "{requests}" are dimensionless; braces excluded inside so this is linear.
const ANNOTATION_RE = /^\{[^{}]{1,62}\}$/;
const EXAMPLES = 'ns, us, ms, s, min, h, B, KB, KiB, MB, MiB, GB, GiB, bit, Mbit, MB/s, Mbps, %, ratio, Hz, celsius, count';

export function lookupUnit(unit: string): UnitRule | string {
  if (unit.length > MAX_UNIT_LENGTH) return `is longer than ${MAX_UNIT_LENGTH} characters`;
  const exact = TABLE.get(unit);
  if (exact !== undefined) return exact;
  const ambiguous = AMBIGUOUS.get(unit);
  if (ambiguous !== undefined) return `is ambiguous; ${ambiguous}`;
  const word = WORD_TABLE.get(unit.toLowerCase());
  if (word !== undefined) return word;
  if (ANNOTATION_RE.test(unit)) return rule('');
  return `is not a known unit; use one of ${EXAMPLES} (see the normalizer README for the full table)`;
}

/** Converts `value` in `unit` to its canonical unit. `reason` is a sentence fragment after the unit. */
export function convertUnit(value: number, unit: string): UnitConversion {
  const found = lookupUnit(unit);
  if (typeof found === 'string') return { ok: false, reason: found };
  const converted = found.mul === 1 && found.div === 1 ? value : (value * found.mul) / found.div;
  return { ok: true, value: converted, unit: found.canonical, converted: unit !== found.canonical };
}
