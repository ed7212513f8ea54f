/**
 * ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "these rows are bad": the same rows
 * fail the same way on every retry, so retrying them only stalls what follows. Everything not
 * listed — network errors, timeouts, TOO_MANY_PARTS (252), MEMORY_LIMIT_EXCEEDED (241), a missing
 * table or column after a bad deploy — is treated as transient and retried, because dead-lettering
 * good rows for a server-side problem would lose them; an unknown code errs on that safe side.
 */
const DATA_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [6, 'CANNOT_PARSE_TEXT'],
  [25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'],
  [26, 'CANNOT_PARSE_QUOTED_STRING'],
  [27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  [38, 'CANNOT_PARSE_DATE'],
  [41, 'CANNOT_PARSE_DATETIME'],
  [53, 'TYPE_MISMATCH'],
  [69, 'ARGUMENT_OUT_OF_BOUND'],
  [70, 'CANNOT_CONVERT_TYPE'],
  [72, 'CANNOT_PARSE_NUMBER'],
  [117, 'INCORRECT_DATA'],
  [130, 'CANNOT_READ_ARRAY_FROM_TEXT'],
  [131, 'TOO_LARGE_STRING_SIZE'],
  [321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  [349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'],
  [376, 'CANNOT_PARSE_UUID'],
  [407, 'DECIMAL_OVERFLOW'],
  [467, 'CANNOT_PARSE_BOOL'],
]);

/** Why ClickHouse refused an insert for its data, or undefined when a retry may succeed. */
export interface InsertRefusal {
  /** ClickHouse's error name, e.g. CANNOT_PARSE_ESCAPE_SEQUENCE: a bounded metric label. */
  type: string;
  code: number;
  /** The server's message, bounded. */
  message: string;
}

const MAX_MESSAGE = 500;

/**
 * Classifies an insert failure. Duck-typed on `code`: chDB's connection throws the ClickHouseError
 * of its own copy of @clickhouse/client-common, so `instanceof` against ours would miss it.
 */
export function insertRefusal(err: unknown): InsertRefusal | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  // chDB's zero-copy insert names ClickHouse's code `clickhouseCode` (its `code` is its own class).
  const e = err as { code?: unknown; clickhouseCode?: unknown };
  const raw = typeof e.clickhouseCode === 'number' ? e.clickhouseCode : e.code;
  const code = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : undefined;
  if (code === undefined) return undefined;
  const type = DATA_ERROR_CODES.get(code);
  if (type === undefined) return undefined;
  const message = String((err as { message?: unknown }).message ?? '').slice(0, MAX_MESSAGE);
  return { type, code, message };
}
