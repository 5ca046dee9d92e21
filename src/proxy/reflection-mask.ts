import { Transform, type TransformCallback } from 'node:stream';
import { hostMatches } from './allowlist.ts';
import type { ActiveAwsCredential } from './aws-resign.ts';
import { PatternSearch } from './pattern-search.ts';
import type { ActiveSurrogate } from './surrogates.ts';

/** One way a real value can appear in a response, and what the sandbox sees instead. */
export interface MaskForm {
  /** The bytes of the real value in this form. */
  from: Buffer;
  /** The surrogate in the same form: always the same length, so lengths stay right. */
  to: Buffer;
}

/**
 * Cores shorter than this are not masked: a run of a few base64 characters matches
 * ordinary text too often to be replaced, and a value that short is no credential.
 */
const MIN_CORE = 6;

const RFC3986_EXTRA = /[!'()*]/g;

/** The percent-encodings a server may use: JavaScript's, RFC 3986's (SigV4), forms', lower-case hex. */
function percentForms(v: string): string[] {
  const uri = encodeURIComponent(v);
  const strict = uri.replace(
    RFC3986_EXTRA,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const form = new URLSearchParams({ v }).toString().slice(2);
  const lower = (s: string) => s.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());
  return [uri, strict, form, lower(uri), lower(strict), lower(form)];
}

/** JSON string escapes: as JSON.stringify writes them, and with `\/` as PHP writes them. */
function jsonForms(v: string): string[] {
  const json = JSON.stringify(v).slice(1, -1);
  return [json, json.replaceAll('/', '\\/')];
}

/**
 * The characters of `bytes`' base64 at alignment k (the value starts k bytes into a
 * 3-byte group) that depend on the value's bytes alone: the edge characters, mixed with
 * whatever surrounds the value, are dropped.
 */
function base64Core(bytes: Buffer, k: number, url: boolean): string {
  const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString(url ? 'base64url' : 'base64');
  return encoded.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
}

/**
 * Every form of `real` a response may carry, each paired with the surrogate's form: the raw
 * value, its percent- and JSON-escaped forms, and its base64 and base64url cores at the
 * three alignments (a Basic-auth value or a JWT quoting it). A surrogate keeps the
 * value's length and character classes, so every pair has equal lengths.
 */
export function formsOf(real: string, surrogate: string): MaskForm[] {
  const forms = new Map<string, MaskForm>();
  const add = (from: string, to: string) => {
    if (from !== to && !forms.has(from))
      forms.set(from, { from: Buffer.from(from), to: Buffer.from(to) });
  };
  add(real, surrogate);
  for (const escaped of [percentForms, jsonForms]) {
    const theirs = escaped(surrogate);
    for (const [i, f] of escaped(real).entries()) add(f, theirs[i]!);
  }
  const r = Buffer.from(real);
  const s = Buffer.from(surrogate);
  for (const url of [false, true])
    for (const k of [0, 1, 2]) {
      const core = base64Core(r, k, url);
      if (core.length >= MIN_CORE) add(core, base64Core(s, k, url));
    }
  return [...forms.values()];
}

/** Scans for every form of every real value and writes the surrogate's form in its place. */
export class ReflectionMask {
  /** Longest first, one entry per distinct real form. */
  readonly #forms: MaskForm[];
  /** The forms as latin1 strings: how Node hands over header values, byte for byte. */
  readonly #textForms: Array<[string, string]>;
  /** Hosts that received a real value: their bodies are checked. */
  readonly #hosts: string[];
  /** Hosts that received a real value whole (a masked secret, not an AWS signature). */
  readonly #wholeValueHosts: string[];
  readonly #search: PatternSearch;
  /** By their last two bytes: the proper prefixes (2 bytes or more) of the forms, longest first. */
  readonly #prefixEnds = new Map<number, Array<{ form: Buffer; k: number }>>();
  /** The forms' first bytes: a one-byte prefix. */
  readonly #firstBytes = new Uint8Array(256);
  readonly maxLength: number;

  /**
   * `wholeValueHosts`: those of `hosts` a real value is sent to as it is (a masked
   * secret's); default all of them. An AWS secret key never leaves errand (it only signs),
   * so the hosts of AWS keys alone need not be among them.
   */
  constructor(
    values: Array<{ real: string; surrogate: string }>,
    hosts: string[],
    wholeValueHosts: string[] = hosts,
  ) {
    const seen = new Set<string>();
    this.#forms = values
      .flatMap((v) => formsOf(v.real, v.surrogate))
      .filter((f) => {
        const key = f.from.toString('latin1');
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .sort((a, b) => b.from.length - a.from.length);
    this.#search = new PatternSearch(this.#forms.map((f) => f.from));
    for (const { from } of this.#forms) {
      this.#firstBytes[from[0]!] = 1;
      for (let k = 2; k < from.length; k++) {
        const key = from[k - 2]! | (from[k - 1]! << 8);
        const list = this.#prefixEnds.get(key) ?? [];
        list.push({ form: from, k });
        this.#prefixEnds.set(key, list);
      }
    }
    for (const list of this.#prefixEnds.values()) list.sort((a, b) => b.k - a.k);
    this.#textForms = this.#forms.map((f) => [f.from.toString('latin1'), f.to.toString('latin1')]);
    this.#hosts = hosts.map((h) => h.toLowerCase());
    this.#wholeValueHosts = wholeValueHosts.map((h) => h.toLowerCase());
    this.maxLength = this.#forms[0]?.from.length ?? 0;
  }

  /** A task's mask: its masked secrets (the agent's credential included) and AWS keys. */
  static of(policy: {
    surrogates: ActiveSurrogate[];
    aws?: ActiveAwsCredential[];
  }): ReflectionMask {
    let mask = cache.get(policy);
    if (!mask) {
      const aws = policy.aws ?? [];
      mask = new ReflectionMask(
        [
          ...policy.surrogates.map((s) => ({ real: s.real, surrogate: s.surrogate })),
          ...aws.flatMap((a) => [
            { real: a.accessKeyId, surrogate: a.surrogate.accessKeyId },
            { real: a.secretAccessKey, surrogate: a.surrogate.secretAccessKey },
            ...(a.sessionToken && a.surrogate.sessionToken
              ? [{ real: a.sessionToken, surrogate: a.surrogate.sessionToken }]
              : []),
          ]),
        ],
        [...policy.surrogates.flatMap((s) => s.hosts), ...aws.flatMap((a) => a.hosts)],
        policy.surrogates.flatMap((s) => s.hosts),
      );
      cache.set(policy, mask);
    }
    return mask;
  }

  /** True when a real value went to `host`, so what comes back from it is checked. */
  checksBodiesOf(host: string): boolean {
    return this.#forms.length > 0 && this.#hosts.some((h) => hostMatches(h, host));
  }

  /**
   * True when a masked secret's real value went to `host` as it is: a part of a response
   * from it (a byte range) could carry a piece of that value, which no mask can recognise.
   */
  refusesPartsFrom(host: string): boolean {
    return this.#forms.length > 0 && this.#wholeValueHosts.some((h) => hostMatches(h, host));
  }

  /** A header value (or name, or status text) with every real value replaced. */
  text(s: string): string {
    for (const [from, to] of this.#textForms)
      if (from.length <= s.length && s.includes(from)) s = s.replaceAll(from, to);
    return s;
  }

  /** `data` with every real value replaced: the same buffer when there was none, else a copy. */
  bytes(data: Buffer): Buffer {
    const found = this.#search.find(data);
    if (found.length === 0) return data;
    const out = Buffer.from(data);
    for (const [at, form] of found) this.#forms[form]!.to.copy(out, at);
    return out;
  }

  /**
   * How many bytes at the end of `data` could begin a real value that the next bytes
   * complete. Only those are held back, so a stream whose reads end elsewhere (an event
   * stream's blank line) is not delayed at all.
   */
  heldBack(data: Buffer): number {
    const len = data.length;
    if (len === 0) return 0;
    if (len >= 2) {
      // Longest first, so the first prefix that matches is the answer.
      const ends = this.#prefixEnds.get(data[len - 2]! | (data[len - 1]! << 8)) ?? [];
      for (const { form, k } of ends)
        if (k <= len && data.compare(form, 0, k, len - k, len) === 0) return k;
    }
    return this.#firstBytes[data[len - 1]!]!;
  }

  /** A masker for one stream, which catches a value split across reads. */
  stream(): StreamMasker {
    return new StreamMasker(this);
  }

  /** A body Transform: every real value replaced, lengths kept, split values caught. */
  transform(): Transform {
    const m = this.stream();
    return new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        const out = m.push(chunk);
        if (out.length) this.push(out);
        cb();
      },
      flush(cb: TransformCallback) {
        const out = m.end();
        if (out.length) this.push(out);
        cb();
      },
    });
  }
}

const cache = new WeakMap<object, ReflectionMask>();

/**
 * The state of one masked stream: the bytes held back because they could be the start of
 * a real value whose rest is in the next read.
 */
export class StreamMasker {
  readonly #mask: ReflectionMask;
  #held: Buffer = Buffer.alloc(0);

  constructor(mask: ReflectionMask) {
    this.#mask = mask;
  }

  /** The bytes that can go on now, masked. */
  push(chunk: Buffer): Buffer {
    const data = this.#mask.bytes(this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk);
    const keep = this.#mask.heldBack(data);
    this.#held = keep ? Buffer.from(data.subarray(data.length - keep)) : Buffer.alloc(0);
    return keep ? data.subarray(0, data.length - keep) : data;
  }

  /** What was held back, at the end of the stream (or of a WebSocket frame). */
  end(): Buffer {
    const held = this.#held;
    this.#held = Buffer.alloc(0);
    return held;
  }
}
