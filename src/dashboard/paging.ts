/**
 * Paging parameters of list routes. Each is a whole number in a stated range or absent
 * (then its default); anything else is an answer of its own, a 400 naming the parameter
 * and the range, never a silent default: `limit=-1` once meant "no limit" to SQLite.
 */
export interface PagingRule {
  min: number;
  max: number;
  default: number;
}

export type PagingValue =
  | { ok: true; value: number }
  | { ok: false; parameter: string; message: string };

export function pagingValue(name: string, raw: string | undefined, rule: PagingRule): PagingValue {
  if (raw === undefined || raw === '') return { ok: true, value: rule.default };
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= rule.min && value <= rule.max) {
    return { ok: true, value };
  }
  return {
    ok: false,
    parameter: name,
    message: `${name} must be a whole number from ${rule.min} to ${rule.max}`,
  };
}

/** Event and message sequence numbers (`after`): from the start, or after any seq. */
export const AFTER_SEQ: PagingRule = { min: 0, max: Number.MAX_SAFE_INTEGER, default: 0 };
