import { reject, type TypeRule } from './limits.ts';
import { requiredString } from './fields.ts';
import { copyExcept, describe, isPlainObject } from './values.ts';

const LIFTED: ReadonlySet<string> = new Set(['name']);

/** Attributes stay in data as sent; their size is bounded with the rest of data (maxDataBytes). */
export const eventRule: TypeRule = (data, out, limits) => {
  const name = requiredString(data.name, 'data.name', limits.maxNameBytes, 'a non-empty string', true);
  if (typeof name === 'object') return name;
  const attributes = data.attributes;
  if (attributes !== undefined && attributes !== null && !isPlainObject(attributes)) {
    return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `data.attributes must be an object, got ${describe(attributes)}`);
  }
  out.name = name;
  copyExcept(data, LIFTED, out.data);
  return undefined;
};
