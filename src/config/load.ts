import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  type Document,
  isMap,
  isScalar,
  LineCounter,
  type Node,
  parseDocument,
  type ScalarTag,
} from 'yaml';
import type { z } from 'zod';
import { Secret } from '../util/secret.ts';
import { redactUrl } from '../util/url-credentials.ts';
import { yamlShapeProblem, yamlValue } from '../util/yaml-limits.ts';
import { type FileExposure, fileExposure } from './file-modes.ts';
import { repoIdOfFolder } from './repo-id.ts';
import { SECRET_KEYS, SECRET_MAPS, type ServerConfig, serverConfigSchema } from './schema.ts';

export interface ConfigIssue {
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path, e.g. `repos.app.limits.cpus`; empty for the whole file. */
  key: string;
  expected: string;
  /** What was there, described without ever printing a secret. */
  found: string;
  message: string;
}

/** Something that does not stop errand but is worth fixing, with the command that fixes it. */
export interface ConfigWarning {
  message: string;
  fix: string;
}

export type ConfigLoadResult =
  | {
      status: 'ok';
      config: ServerConfig;
      path?: string;
      source: 'file' | 'defaults';
      /** Said on every start and by `errand check`; empty: nothing to say. */
      warnings: ConfigWarning[];
    }
  | { status: 'missing'; path: string }
  | { status: 'invalid'; path: string; issues: ConfigIssue[] };

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdgBase(env, 'XDG_CONFIG_HOME', ['.config']), 'errand', 'errand.yaml');
}

/** An XDG base folder: the variable when it holds an absolute path, else the usual default under HOME. */
function xdgBase(env: NodeJS.ProcessEnv, variable: string, fallback: string[]): string {
  const v = env[variable];
  return v && isAbsolute(v) ? v : join(env.HOME ?? homedir(), ...fallback);
}

/** errand's state folder when the config names none: $XDG_STATE_HOME/errand. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdgBase(env, 'XDG_STATE_HOME', ['.local', 'state']), 'errand');
}

/** errand's cache (Node, Claude Code binaries): $XDG_CACHE_HOME/errand, as scripts/node.sh uses. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdgBase(env, 'XDG_CACHE_HOME', ['.cache']), 'errand');
}

export function stateDir(config: ServerConfig, env: NodeJS.ProcessEnv = process.env): string {
  return config.execution.state_dir ? resolve(config.execution.state_dir) : defaultStateDir(env);
}

/**
 * The folder of what sandboxes mount when the config names none: $XDG_DATA_HOME/errand/
 * sandboxes. Kept apart from the state folder, whose path a container's mount table would
 * otherwise show.
 */
export function defaultSandboxDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdgBase(env, 'XDG_DATA_HOME', ['.local', 'share']), 'errand', 'sandboxes');
}

export function sandboxDir(config: ServerConfig, env: NodeJS.ProcessEnv = process.env): string {
  return config.execution.sandbox_dir
    ? resolve(config.execution.sandbox_dir)
    : defaultSandboxDir(env);
}

/** A `!env NAME` or `!secret NAME` reference, resolved after the whole file is read. */
class TagRef {
  readonly tag: '!env' | '!secret';
  readonly name: string;
  constructor(tag: '!env' | '!secret', name: string) {
    this.tag = tag;
    this.name = name;
  }
}

const TAGS: ScalarTag[] = (['!env', '!secret'] as const).map((tag) => ({
  tag,
  identify: (v: unknown) => v instanceof TagRef && v.tag === tag,
  resolve: (str: string) => new TagRef(tag, str.trim()),
}));

/** Parses NAME=value lines (dotenv): `#` comments, optional `export`, optional quotes. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (
      (value.startsWith('"') && value.endsWith('"') && value.length >= 2) ||
      (value.startsWith("'") && value.endsWith("'") && value.length >= 2)
    ) {
      value = value.slice(1, -1);
      if (m[2]!.startsWith('"'))
        value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    out[m[1]!] = value;
  }
  return out;
}

export async function loadServerConfig(
  opts: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ConfigLoadResult> {
  const env = opts.env ?? process.env;
  const path = resolve(opts.cwd ?? process.cwd(), opts.path ?? defaultConfigPath(env));
  if (!existsSync(path)) {
    if (opts.path !== undefined) return { status: 'missing', path };
    return await embeddedDefaults(path, opts.cwd ?? process.cwd(), env);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return invalid(path, {
      key: '',
      expected: 'a readable file',
      found: (e as NodeJS.ErrnoException).code ?? 'an error',
    });
  }
  const result = parseConfigText(text, path, env);
  if (result.status !== 'ok') return result;
  // A warning, not a refusal: a config of !secret references only is fine to share, and a
  // running installation must not stop over it on an upgrade.
  const exposed = fileExposure(path);
  if (exposed) result.warnings.push(configExposed(exposed));
  return result;
}

function configExposed(x: FileExposure): ConfigWarning {
  return {
    message: `${x.problem}: credentials written in it inline (passwords, tokens, a token in a git_url) are theirs to read`,
    fix: x.fix,
  };
}

function invalid(
  path: string,
  i: Omit<ConfigIssue, 'file' | 'message'> & { line?: number; column?: number },
): ConfigLoadResult {
  return { status: 'invalid', path, issues: [withMessage({ file: path, ...i })] };
}

/** The file passes a limit every YAML file is read under (util/yaml-limits.ts). */
function beyondLimits(path: string, problem: string): ConfigLoadResult {
  return {
    status: 'invalid',
    path,
    issues: [
      {
        file: path,
        key: '',
        expected: "YAML within errand's limits",
        found: problem,
        message: `${path}: ${problem}`,
      },
    ],
  };
}

function withMessage(i: Omit<ConfigIssue, 'message'>): ConfigIssue {
  const where = `${i.file}${i.line ? `:${i.line}:${i.column ?? 1}` : ''}`;
  return {
    ...i,
    message: `${where}: ${i.key ? `${i.key}: ` : ''}expected ${i.expected}, found ${i.found}`,
  };
}

/** Parses and validates config text; `path` names the file in messages and anchors relative paths. */
export function parseConfigText(
  text: string,
  path: string,
  env: NodeJS.ProcessEnv,
): ConfigLoadResult {
  const shape = yamlShapeProblem(text);
  if (shape) return beyondLimits(path, shape);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    customTags: TAGS,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const pos = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    return {
      status: 'invalid',
      path,
      issues: doc.errors.map((e) =>
        withMessage({
          file: path,
          ...pos(e.pos[0]),
          key: '',
          expected: 'valid YAML',
          found: e.message.split('\n')[0]!,
        }),
      ),
    };
  }
  for (const w of doc.warnings) {
    if (/Unresolved tag/.test(w.message)) {
      return invalid(path, {
        ...pos(w.pos[0]),
        key: '',
        expected: 'only the tags !env and !secret',
        found: w.message.split('\n')[0]!,
      });
    }
  }
  const value = yamlValue(doc);
  if (!value.ok) return beyondLimits(path, value.problem);
  const raw = (value.value ?? {}) as { secrets_file?: unknown };
  const dir = dirname(path);
  const issues: ConfigIssue[] = [];
  const tagged = new Set<string>();

  let dotenv: Record<string, string> | undefined;
  let secrets: Record<string, string> | undefined;
  const secretsPath = resolve(
    dir,
    typeof raw?.secrets_file === 'string' ? raw.secrets_file : 'secrets.env',
  );
  const lookup = (ref: TagRef, keyPath: (string | number)[]): string | undefined => {
    const at = { file: path, ...pos(nodeAt(doc, keyPath)?.range?.[0]), key: keyPath.join('.') };
    if (ref.tag === '!env') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref.name)) {
        issues.push(
          withMessage({
            ...at,
            expected: 'an environment variable name after !env',
            found: 'something else',
          }),
        );
        return undefined;
      }
      dotenv ??= existsSync(join(dir, '.env'))
        ? parseDotenv(readFileSync(join(dir, '.env'), 'utf8'))
        : {};
      const v = env[ref.name] ?? dotenv[ref.name];
      if (v === undefined)
        issues.push(
          withMessage({
            ...at,
            expected: `environment variable ${ref.name} to be set (in the environment or ${join(dir, '.env')})`,
            found: 'it unset',
          }),
        );
      return v;
    }
    if (!existsSync(secretsPath)) {
      issues.push(
        withMessage({
          ...at,
          expected: `secret ${ref.name} in ${secretsPath}`,
          found: 'no such file',
        }),
      );
      return undefined;
    }
    secrets ??= parseDotenv(readFileSync(secretsPath, 'utf8'));
    const v = secrets[ref.name];
    if (v === undefined)
      issues.push(
        withMessage({
          ...at,
          expected: `secret ${ref.name} in ${secretsPath}`,
          found: 'no such name there',
        }),
      );
    return v;
  };

  // The files credentials come from must be private before anything is read from them:
  // the secrets file whenever it exists, .env when an !env tag would read it.
  const credentialFiles = [
    secretsPath,
    ...(usesTag(raw, '!env') ? [join(dir, '.env')] : []),
  ].filter((f) => existsSync(f));
  for (const file of credentialFiles) {
    const exposed = fileExposure(file);
    if (exposed) {
      return {
        status: 'invalid',
        path,
        issues: [
          {
            file,
            key: '',
            expected: 'a file of the user errand runs as that only they can read (mode 0600)',
            found: exposed.found,
            message: `${exposed.problem}, and errand reads credentials from it. Fix it with: ${exposed.fix}`,
          },
        ],
      };
    }
  }

  const resolveRefs = (v: unknown, keyPath: (string | number)[]): unknown => {
    if (v instanceof TagRef) {
      tagged.add(keyPath.join('.'));
      return lookup(v, keyPath) ?? '';
    }
    if (Array.isArray(v)) return v.map((x, i) => resolveRefs(x, [...keyPath, i]));
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [k, resolveRefs(x, [...keyPath, k])]),
      );
    }
    return v;
  };
  const data = resolveRefs(raw, []);
  if (issues.length > 0) return { status: 'invalid', path, issues };
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return invalid(path, {
      line: 1,
      column: 1,
      key: '',
      expected: 'a mapping of settings (execution, dashboard, repos)',
      found: describe(data, false),
    });
  }

  const parsed = serverConfigSchema.safeParse(data);
  if (!parsed.success) {
    return {
      status: 'invalid',
      path,
      issues: parsed.error.issues.flatMap((iss) => toIssues(iss, doc, data, path, pos, tagged)),
    };
  }
  const config = parsed.data;
  // Relative paths in the file are relative to the file, not to wherever errand started.
  if (config.execution.state_dir)
    config.execution.state_dir = resolve(dir, config.execution.state_dir);
  if (config.execution.sandbox_dir)
    config.execution.sandbox_dir = resolve(dir, config.execution.sandbox_dir);
  for (const r of Object.values(config.repos)) {
    if (r.network.upstream_ca) r.network.upstream_ca = resolve(dir, r.network.upstream_ca);
  }
  return { status: 'ok', config, path, source: 'file', warnings: [] };
}

function usesTag(v: unknown, tag: TagRef['tag']): boolean {
  if (v instanceof TagRef) return v.tag === tag;
  if (v && typeof v === 'object') return Object.values(v).some((x) => usesTag(x, tag));
  return false;
}

function nodeAt(doc: Document, keyPath: (string | number)[]): Node | undefined {
  for (let n = keyPath.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keyPath.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in (node as object)) return node as Node;
  }
  return undefined;
}

function keyNode(doc: Document, keyPath: (string | number)[], key: string): Node | undefined {
  const parent = keyPath.length ? doc.getIn(keyPath, true) : doc.contents;
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key;
    }
  }
  return nodeAt(doc, keyPath);
}

function valueAt(data: unknown, keyPath: PropertyKey[]): { present: boolean; value: unknown } {
  let v: unknown = data;
  for (const k of keyPath) {
    if (v === null || typeof v !== 'object' || !(k in (v as object)))
      return { present: false, value: undefined };
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return { present: true, value: v };
}

function describe(v: unknown, hide: boolean): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (hide) return `a ${typeof v} (value hidden)`;
  if (typeof v === 'string') {
    const shown = redactUrl(v);
    return shown.length > 40 ? `"${shown.slice(0, 37)}..."` : JSON.stringify(shown);
  }
  return String(v);
}

const DEFAULT_MESSAGE = /^(Invalid|Too (small|big)|Expected|Unrecognized)/;

function expectedOf(iss: z.core.$ZodIssue): string {
  const own = iss.message && !DEFAULT_MESSAGE.test(iss.message) ? iss.message : undefined;
  switch (iss.code) {
    case 'invalid_type':
      return iss.expected === 'object'
        ? 'a mapping'
        : iss.expected === 'array'
          ? 'a list'
          : `a ${iss.expected}`;
    case 'too_small': {
      if (own) return own;
      const m = Number(iss.minimum);
      if (iss.origin === 'number')
        return `a number ${iss.inclusive ? 'of at least' : 'greater than'} ${m}`;
      if (iss.origin === 'string') return `at least ${m} character${m === 1 ? '' : 's'}`;
      return `at least ${m} item${m === 1 ? '' : 's'}`;
    }
    case 'too_big': {
      if (own) return own;
      const m = Number(iss.maximum);
      if (iss.origin === 'number')
        return `a number ${iss.inclusive ? 'of at most' : 'less than'} ${m}`;
      return `at most ${m}`;
    }
    case 'invalid_value':
      return `one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return own ?? `a valid ${iss.format}`;
    case 'invalid_union':
      return own ?? 'a value of the right kind';
    default:
      return own ?? iss.message;
  }
}

function toIssues(
  iss: z.core.$ZodIssue,
  doc: Document,
  data: unknown,
  file: string,
  pos: (o: number | undefined) => { line?: number; column?: number },
  tagged: Set<string>,
): ConfigIssue[] {
  const keyPath = iss.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (iss.code === 'unrecognized_keys') {
    return iss.keys.map((k) =>
      withMessage({
        file,
        ...pos(keyNode(doc, keyPath, k)?.range?.[0]),
        key: [...keyPath, k].join('.'),
        expected: 'no such key (check the spelling; see docs/configuration.md)',
        found: `unknown key "${k}"`,
      }),
    );
  }
  if (iss.code === 'invalid_key') {
    const bad = String(keyPath[keyPath.length - 1]);
    const parent = keyPath.slice(0, -1);
    const inner = iss.issues[0];
    return [
      withMessage({
        file,
        ...pos(keyNode(doc, parent, bad)?.range?.[0]),
        key: keyPath.join('.'),
        expected: inner ? expectedOf(inner) : 'a valid key',
        found: `the key ${JSON.stringify(bad)}`,
      }),
    ];
  }
  const key = keyPath.join('.');
  const hide =
    tagged.has(key) ||
    keyPath.some((k) => typeof k === 'string' && SECRET_KEYS.has(k)) ||
    SECRET_MAPS.has(keyPath.slice(0, -1).join('.'));
  const { present, value } = valueAt(data, keyPath);
  const node = present ? doc.getIn(keyPath, true) : undefined;
  const at =
    node && typeof node === 'object' && 'range' in node ? (node as Node) : nodeAt(doc, keyPath);
  return [
    withMessage({
      file,
      ...pos(at?.range?.[0]),
      key,
      expected: expectedOf(iss),
      found: present ? describe(value, hide) : 'nothing (the key is missing)',
    }),
  ];
}

export function formatConfigIssues(issues: ConfigIssue[]): string {
  return issues.map((i) => i.message).join('\n');
}

/**
 * Without a config file: the git checkout errand runs in is the repository, and a model
 * credential in errand's environment (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN) is
 * its agent credential, so `ANTHROPIC_API_KEY=… npm start` is enough to try errand.
 */
async function embeddedDefaults(
  path: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ConfigLoadResult> {
  const agent = env.ANTHROPIC_API_KEY
    ? { api_key: new Secret(env.ANTHROPIC_API_KEY) }
    : env.CLAUDE_CODE_OAUTH_TOKEN
      ? { oauth_token: new Secret(env.CLAUDE_CODE_OAUTH_TOKEN) }
      : {};
  const repos: Record<string, { git_url: string; agent: typeof agent }> = {};
  try {
    const { stdout } = await promisify(execFile)(
      'git',
      ['-C', cwd, 'rev-parse', '--show-toplevel'],
      { timeout: 10_000 },
    );
    const top = stdout.trim();
    if (top) {
      repos[repoIdOfFolder(top)] = { git_url: top, agent };
    }
  } catch {
    // Not inside a git checkout (or no git): no default repository.
  }
  const parsed = serverConfigSchema.safeParse({ repos });
  if (!parsed.success) throw new Error(`embedded defaults are invalid: ${parsed.error.message}`);
  return { status: 'ok', config: parsed.data, path, source: 'defaults', warnings: [] };
}
