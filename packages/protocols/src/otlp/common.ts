import type { WireEntry } from '@ingest/contracts';
import { LabelSet } from '../labels.ts';
import { DEFAULT_LABEL_LIMITS, type DecodeOptions } from '../types.ts';
import { attributeText, list, obj, str, type Obj } from './decode.ts';

export const SERVICE_NAME = 'service.name';

/** The entry's app and the resource's attributes (other than service.name), shared by every item under it. */
export interface ResourceContext {
  app: string | undefined;
  attributes: readonly Obj[];
}

export function resourceContext(resourceItem: Obj): ResourceContext {
  const attributes = list(obj(resourceItem, 'resource'), 'attributes');
  let app: string | undefined;
  const rest: Obj[] = [];
  for (const kv of attributes) {
    if (str(kv, 'key') === SERVICE_NAME) app = attributeText(obj(kv, 'value'));
    else rest.push(kv);
  }
  return { app, attributes: rest };
}

/** Resource attributes, then the item's own (which win on a clash), as labels within the limits. */
export function labelsOf(ctx: ResourceContext, own: readonly Obj[], opts: DecodeOptions): LabelSet {
  const set = new LabelSet(opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
  for (const kv of ctx.attributes) set.add(str(kv, 'key'), attributeText(obj(kv, 'value')));
  for (const kv of own) set.add(str(kv, 'key'), attributeText(obj(kv, 'value')));
  return set;
}

export function withLabels(entry: WireEntry, set: LabelSet): WireEntry {
  if (!set.empty) entry.labels = set.labels;
  if (set.hasOverflow) entry.data.attributes = set.overflow;
  return entry;
}
