import { ingestError, IngestError } from '@ingest/contracts';
import { decodeWith, protoError, TO_OBJECT } from '../decode-proto.ts';
import { setOwn } from '../labels.ts';
import { protoType, type ProtoType } from '../proto.ts';

/** The OTLP/HTTP encodings: binary protobuf, or the OTLP JSON mapping of the same messages. */
export type OtlpEncoding = 'protobuf' | 'json';

export function otlpEncoding(contentType: string | undefined): OtlpEncoding | undefined {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (ct === 'application/x-protobuf' || ct === 'application/protobuf') return 'protobuf';
  if (ct === 'application/json') return 'json';
  return undefined;
}

const FILES = {
  logs: ['opentelemetry/proto/collector/logs/v1/logs_service.proto'],
  metrics: ['opentelemetry/proto/collector/metrics/v1/metrics_service.proto'],
  status: ['google/rpc/status.proto'],
} as const;

export const OTLP_TYPES = {
  logsRequest: () => protoType(FILES.logs, 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  logsResponse: () => protoType(FILES.logs, 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
  metricsRequest: () => protoType(FILES.metrics, 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
  metricsResponse: () => protoType(FILES.metrics, 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
  status: () => protoType(FILES.status, 'google.rpc.Status'),
};

/** OTLP JSON writes trace and span ids as hex, where proto3 JSON would use base64. */
const HEX_ID_KEYS: ReadonlySet<string> = new Set(['traceId', 'spanId', 'parentSpanId']);

function hexIdsToBytes(v: unknown, depth: number): unknown {
  if (depth > 64 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => hexIdsToBytes(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[k] = HEX_ID_KEYS.has(k) && typeof x === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(x) ? Buffer.from(x, 'hex') : hexIdsToBytes(x, depth + 1);
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes an export request of either encoding to a plain object; a body that does not fit the schema is a 400. */
export function decodeOtlp(type: ProtoType, body: Uint8Array, encoding: OtlpEncoding, parseJson: (text: string) => unknown): Record<string, unknown> {
  // One shape for both encodings (TO_OBJECT): 64-bit integers as decimal strings, so nanosecond
  // times and int values keep every digit.
  if (encoding === 'protobuf') return decodeWith(type, body);
  try {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      throw ingestError('INGEST_ERR_INVALID_UTF8');
    }
    const json = parseJson(text);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw protoError(type.name, 'the JSON body must be an object');
    return type.toObject(type.fromObject(hexIdsToBytes(json, 0) as Record<string, unknown>), TO_OBJECT);
  } catch (e) {
    if (e instanceof IngestError) throw e;
    throw protoError(type.name, String((e as Error).message));
  }
}

/** Encodes an answer (an Export…ServiceResponse or a google.rpc.Status) in the request's encoding. */
export function encodeOtlp(type: ProtoType, message: Record<string, unknown>, encoding: OtlpEncoding): { contentType: string; body: Buffer | string } {
  if (encoding === 'json') {
    // proto3 JSON: int64 as a decimal string, absent fields left out.
    const obj = type.toObject(type.fromObject(message), { longs: String, enums: Number, defaults: false });
    return { contentType: 'application/json', body: JSON.stringify(obj) };
  }
  return { contentType: 'application/x-protobuf', body: Buffer.from(type.encode(type.fromObject(message)).finish()) };
}

// Accessors over the decoded plain object (proto field names in lowerCamelCase).

export type Obj = Record<string, unknown>;

export function list(o: Obj | undefined, key: string): Obj[] {
  const v = o?.[key];
  return Array.isArray(v) ? (v as Obj[]) : [];
}

export function obj(o: Obj | undefined, key: string): Obj | undefined {
  const v = o?.[key];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

export function str(o: Obj | undefined, key: string): string {
  const v = o?.[key];
  return typeof v === 'string' ? v : '';
}

export function hex(o: Obj | undefined, key: string): string {
  const v = o?.[key];
  return v instanceof Uint8Array && v.byteLength > 0 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') : '';
}

/** Epoch ms of a fixed64 nanosecond time held as a decimal string; 0 when unset. */
export function nanosToMs(ns: string): number {
  if (ns === '' || ns === '0') return 0;
  return Number(BigInt(ns) / 1_000_000n);
}

/** An AnyValue as JSON data: strings, numbers, booleans, arrays and objects. 64-bit ints beyond 2^53 stay strings. */
export function anyValue(v: Obj | undefined, depth = 0): unknown {
  if (v === undefined || depth > 16) return null;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'intValue': {
      const n = Number(v.intValue);
      return Number.isSafeInteger(n) ? n : String(v.intValue);
    }
    case 'doubleValue':
      return v.doubleValue;
    case 'bytesValue':
      return hex(v, 'bytesValue');
    case 'arrayValue':
      return list(obj(v, 'arrayValue'), 'values').map((x) => anyValue(x, depth + 1));
    case 'kvlistValue': {
      const out: Obj = {};
      for (const kv of list(obj(v, 'kvlistValue'), 'values')) {
        setOwn(out, str(kv, 'key'), anyValue(obj(kv, 'value'), depth + 1));
      }
      return out;
    }
    default:
      return null;
  }
}

/** An attribute value as a label value: strings as they are, everything else as JSON. */
export function attributeText(v: Obj | undefined): string {
  const x = anyValue(v);
  return typeof x === 'string' ? x : JSON.stringify(x);
}
