import type { WireEntry } from '@ingest/contracts';
import { emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';
import { push } from '../push.ts';
import { labelsOf, resourceContext, withLabels } from './common.ts';
import { anyValue, decodeOtlp, hex, list, nanosToMs, obj, OTLP_TYPES, str, type Obj, type OtlpEncoding } from './decode.ts';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** OTLP severity numbers come in groups of four per level (TRACE..TRACE4 = 1..4, …, FATAL..FATAL4 = 21..24). */
export function severityLevel(severityNumber: number, severityText: string): string {
  if (severityNumber >= 1 && severityNumber <= 24) return LEVELS[Math.floor((severityNumber - 1) / 4)]!;
  const t = severityText.toLowerCase();
  if ((LEVELS as readonly string[]).includes(t)) return t;
  if (t === 'warning') return 'warn';
  if (t === 'err') return 'error';
  if (t === 'critical' || t === 'crit' || t === 'emergency' || t === 'panic') return 'fatal';
  return 'info';
}

/**
 * ExportLogsServiceRequest → log entries: body → message (structured bodies as JSON, and kept in
 * data.body), severity → level, service.name → app, resource and record attributes → labels
 * within the limits (the rest in data.attributes), trace and span ids, event name and the exact
 * nanosecond time in data. The item of a record is its 0-based place in the request.
 */
export function decodeOtlpLogs(body: Uint8Array, encoding: OtlpEncoding, opts: DecodeOptions & { parseJson: (text: string) => unknown }): Decoded {
  const req = decodeOtlp(OTLP_TYPES.logsRequest(), body, encoding, opts.parseJson);
  const out = emptyDecoded();
  let item = 0;
  for (const rl of list(req, 'resourceLogs')) {
    const ctx = resourceContext(rl);
    for (const sl of list(rl, 'scopeLogs')) {
      const scope = str(obj(sl, 'scope'), 'name');
      for (const rec of list(sl, 'logRecords')) {
        push(out, logEntry(rec, ctx, scope, opts), item, opts);
        item++;
      }
    }
  }
  return out;
}

function logEntry(rec: Obj, ctx: ReturnType<typeof resourceContext>, scope: string, opts: DecodeOptions): WireEntry {
  const timeNs = str(rec, 'timeUnixNano');
  const observedNs = str(rec, 'observedTimeUnixNano');
  // The spec: a record without an event time is placed at its observed time.
  const ms = nanosToMs(timeNs) || nanosToMs(observedNs) || opts.now;
  const bodyValue = anyValue(obj(rec, 'body'));
  const message = typeof bodyValue === 'string' ? bodyValue : bodyValue === null ? '' : JSON.stringify(bodyValue);
  const severityNumber = typeof rec.severityNumber === 'number' ? rec.severityNumber : 0;
  const severityText = str(rec, 'severityText');
  const data: Record<string, unknown> = { message, level: severityLevel(severityNumber, severityText) };
  if (bodyValue !== null && typeof bodyValue === 'object') data.body = bodyValue;
  if (severityText !== '') data.severity_text = severityText;
  if (severityNumber !== 0) data.severity_number = severityNumber;
  const traceId = hex(rec, 'traceId');
  if (traceId !== '') data.trace_id = traceId;
  const spanId = hex(rec, 'spanId');
  if (spanId !== '') data.span_id = spanId;
  const eventName = str(rec, 'eventName');
  if (eventName !== '') data.event_name = eventName;
  if (scope !== '') data.scope = scope;
  // Kept exact: two records in the same millisecond stay two entries (the id hashes the content).
  if (timeNs !== '' && timeNs !== '0') data.time_unix_nano = timeNs;
  else if (observedNs !== '' && observedNs !== '0') data.observed_time_unix_nano = observedNs;
  const entry: WireEntry = { type: 'log', timestamp: ms, data };
  if (ctx.app !== undefined) entry.app = ctx.app;
  return withLabels(entry, labelsOf(ctx, list(rec, 'attributes'), opts));
}
