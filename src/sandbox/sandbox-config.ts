import { parseDocument, type ScalarTag } from 'yaml';
import { z } from 'zod';
import { yamlShapeProblem, yamlValue } from '../util/yaml-limits.ts';

/**
 * `.errand/sandbox.yaml`: how the repository's sandbox runs. Read from the default branch
 * only (the agent cannot loosen it from its workspace). Unknown keys are refused so a
 * misspelt limit does not silently fall back to a default.
 */
export const sandboxFileSchema = z
  .object({
    limits: z
      .object({
        timeout_seconds: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .optional()
          .describe('wall-clock limit of one command or task'),
        memory: z
          .string()
          .regex(/^\d+[bkmg]?$/i, 'a size like 512m or 4g')
          .optional()
          .describe('memory limit; swap is capped at the same value'),
        cpus: z.number().positive().max(512).optional().describe('CPU limit, fractions allowed'),
        pids: z.number().int().min(16).max(1_000_000).optional().describe('process limit'),
      })
      .strict()
      .default({})
      .describe('resource limits; the server config can lower them further'),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
        z.string(),
      )
      .default({})
      .describe('plain environment variables for the container (never secrets)'),
    masked_secrets: z
      .record(
        z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an upper-case environment variable name'),
        z
          .object({
            value: z
              .string()
              .min(1, 'a value, usually !env NAME')
              .describe('the real credential; write !env NAME, never the value'),
            hosts: z
              .array(z.string().min(1))
              .min(1)
              .describe('hosts where the surrogate is swapped for the real value'),
            headers: z
              .array(z.string().min(1))
              .default(['Authorization'])
              .describe('header name globs carrying the credential'),
          })
          .strict(),
      )
      .default({})
      .describe('credentials the sandbox sees only as surrogates (errand sandbox run)'),
    aws_credentials: z
      .record(
        z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an upper-case name'),
        z
          .object({
            access_key_id: z.string().min(1).describe('write !env NAME'),
            secret_access_key: z.string().min(1).describe('write !env NAME'),
            session_token: z.string().min(1).optional().describe('write !env NAME'),
            hosts: z
              .array(z.string().min(1))
              .min(1)
              .describe('hosts whose requests are re-signed with the real key'),
          })
          .strict(),
      )
      .default({})
      .describe('AWS keys the sandbox sees only as surrogates; the proxy re-signs requests'),
  })
  .strict();

export type SandboxFile = z.infer<typeof sandboxFileSchema>;

export type SandboxFileParse = { ok: true; file: SandboxFile } | { ok: false; problem: string };

export interface SandboxFileOptions {
  /**
   * Where `!env NAME` values come from: these variables (an unset one is a problem), or
   * with `'unresolved'` nowhere: each stays the text `!env NAME`. The gateway takes
   * credentials from its own config, never from a repository's file, and must still run
   * a repository whose file declares them for CI.
   */
  env: NodeJS.ProcessEnv | 'unresolved';
}

const ENV_TAG = '!env';

/** A `!env NAME` in the file, resolved only once its place in the file is known. */
class EnvRef {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

const ENV: ScalarTag = {
  tag: ENV_TAG,
  identify: (v) => v instanceof EnvRef,
  resolve: (text) => new EnvRef(text.trim()),
};

// The only places a CI secret may go: values the proxy swaps in on their scoped hosts.
// Anywhere else (`env.LEAK: !env CI_SECRET`) it would reach the container as it is.
const CREDENTIAL_VALUES: ReadonlyArray<readonly [string, ReadonlySet<string>]> = [
  ['masked_secrets', new Set(['value'])],
  ['aws_credentials', new Set(['access_key_id', 'secret_access_key', 'session_token'])],
];

function isCredentialValue(path: string[]): boolean {
  return (
    path.length === 3 &&
    CREDENTIAL_VALUES.some(([section, fields]) => path[0] === section && fields.has(path[2]!))
  );
}

/**
 * Replaces each `!env` value by its variable, refusing one outside a credential value.
 * Runs on the file's plain values, after aliases are expanded, so `env: { X: *secret }`
 * is caught where the alias lands, not only where its anchor is.
 */
function resolveEnv(
  value: unknown,
  path: string[],
  env: SandboxFileOptions['env'],
): { ok: true; value: unknown } | { ok: false; problem: string } {
  const at = path.join('.') || '(top level)';
  if (value instanceof EnvRef) {
    if (!isCredentialValue(path))
      return {
        ok: false,
        problem: `${at}: ${ENV_TAG} is only allowed in masked_secrets and aws_credentials values`,
      };
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value.name))
      return { ok: false, problem: `${at}: ${ENV_TAG} needs an environment variable name` };
    if (env === 'unresolved') return { ok: true, value: `${ENV_TAG} ${value.name}` };
    const v = env[value.name];
    if (v === undefined)
      return {
        ok: false,
        problem: `${at}: ${ENV_TAG} ${value.name} is not set in this environment`,
      };
    return { ok: true, value: v };
  }
  if (Array.isArray(value) || (typeof value === 'object' && value !== null)) {
    const out: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
    for (const [k, v] of Object.entries(value)) {
      const r = resolveEnv(v, [...path, k], env);
      if (!r.ok) return r;
      (out as Record<string, unknown>)[k] = r.value;
    }
    return { ok: true, value: out };
  }
  return { ok: true, value };
}

/**
 * Parses `.errand/sandbox.yaml` (the one parser of it: `errand sandbox run` and the
 * gateway). `!env NAME` is the only tag, and only in credential values
 * (`masked_secrets.*.value`, `aws_credentials.*.access_key_id|secret_access_key|session_token`).
 * A problem names the key path and the rule, never a value.
 */
export function parseSandboxFile(text: string, opts: SandboxFileOptions): SandboxFileParse {
  const shape = yamlShapeProblem(text);
  if (shape) return { ok: false, problem: shape };
  const doc = parseDocument(text, { customTags: [ENV], prettyErrors: false, uniqueKeys: true });
  const firstLine = (e: { message: string }) => e.message.split('\n')[0];
  if (doc.errors.length > 0)
    return { ok: false, problem: `not valid YAML: ${firstLine(doc.errors[0]!)}` };
  const unknownTag = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (unknownTag)
    return { ok: false, problem: `${firstLine(unknownTag)}: the only tag allowed is ${ENV_TAG}` };
  const raw = yamlValue(doc);
  if (!raw.ok) return raw;
  const resolved = resolveEnv(raw.value ?? {}, [], opts.env);
  if (!resolved.ok) return resolved;
  const r = sandboxFileSchema.safeParse(resolved.value);
  if (r.success) return { ok: true, file: r.data };
  const i = r.error.issues[0]!;
  const key = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]] : i.path;
  return { ok: false, problem: `${key.join('.') || '(top level)'}: ${i.message}` };
}
