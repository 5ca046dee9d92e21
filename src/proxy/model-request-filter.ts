import type { ServerToolKind } from '../util/server-tools.ts';
import type { Allowlist } from './allowlist.ts';

// Why each rule: docs/security.md, "The model API".

export interface ModelRequestPolicy {
  /** The server tools the operator enabled; empty: none is forwarded. */
  serverTools: readonly ServerToolKind[];
  /**
   * Allowlist host patterns (exact, or `*.suffix`) that admit GET on every path; the web
   * tools are held to what these cover. Empty: the web tools are removed even if enabled.
   */
  allowedHosts: readonly string[];
}

export type ModelRequestVerdict =
  | {
      action: 'forward';
      /** The request to send instead of the one received. */
      body: Record<string, unknown>;
      /** What was taken out, by tool type or field name, for the network log. */
      removed: string[];
    }
  | {
      action: 'refuse';
      code: 'model_request_invalid' | 'model_request_url_source';
      reason: string;
    };

type ToolKind = 'client' | 'provider_only' | ServerToolKind;

/**
 * How a tool entry's `type` is treated; first match wins, and a type no row matches is
 * removed (a tool errand does not know may reach anywhere). `client`: the agent's side runs
 * it, inside the sandbox. `provider_only`: the provider runs it on the request's own data and
 * reaches nothing else (tool search over the request's tool list, an advisor model reading
 * the conversation); only these exact versions, since a later one may reach further.
 */
const TOOL_TYPES: ReadonlyArray<{ type: RegExp; kind: ToolKind }> = [
  { type: /^custom$/, kind: 'client' },
  { type: /^(bash|text_editor|computer|computer_toolset|memory)_\d{8}$/, kind: 'client' },
  { type: /^web_search_\d{8}$/, kind: 'web_search' },
  { type: /^web_fetch_\d{8}$/, kind: 'web_fetch' },
  { type: /^code_execution_\d{8}$/, kind: 'code_execution' },
  {
    type: /^(tool_search_tool_(regex|bm25)(_20251119)?|advisor_20260301)$/,
    kind: 'provider_only',
  },
];

/** Server tools that fetch from the web, held to the allowlist with `allowed_domains`. */
const WEB_TOOLS: ReadonlySet<ToolKind> = new Set(['web_search', 'web_fetch']);

/** A tool without a type (or `null`, as the SDK allows) is the agent's own. */
function kindOf(type: string | undefined): ToolKind | undefined {
  if (type === undefined) return 'client';
  return TOOL_TYPES.find((r) => r.type.test(type))?.kind;
}

/** A name fit for the log: the agent chose it, so it is cut to a short plain token. */
function logName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || '(unnamed)';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The allowlist's host patterns that admit GET on every path: what a provider-side fetch
 * could reach without errand seeing the path, so only hosts open on all paths count.
 */
export function hostsOpenToGet(allowlist: Allowlist): string[] {
  const open = allowlist.allow.filter(
    (r) =>
      (!r.methods || r.methods.includes('GET')) &&
      (!r.paths || r.paths.some((g) => /^\/\*+$/.test(g))),
  );
  return [...new Set(open.map((r) => r.host))];
}

/**
 * The `allowed_domains` list for the provider's web tools. The API's `example.com` covers
 * the domain and every subdomain and takes no wildcard (`*.example.com` is invalid), while an
 * allowlist's `example.com` is that host only and `*.example.com` its subdomains only. So a
 * domain is listed only when the allowlist admits it and all its subdomains: `example.com`
 * with `*.example.com`, or any host under a `*.suffix`. A lone exact host gives nothing.
 */
export function apiDomains(allowedHosts: readonly string[]): string[] {
  const exact = new Set(allowedHosts.filter((h) => !h.startsWith('*.')));
  const suffixes = allowedHosts.filter((h) => h.startsWith('*.')).map((h) => h.slice(2));
  const under = (d: string, s: string) => d.endsWith(`.${s}`);
  const admitted = (d: string) => exact.has(d) || suffixes.some((s) => under(d, s));
  const subdomainsAdmitted = (d: string) => suffixes.some((s) => d === s || under(d, s));
  const candidates = [...new Set([...exact, ...suffixes])].filter(
    (d) => admitted(d) && subdomainsAdmitted(d),
  );
  // A domain under another listed one adds nothing.
  return candidates.filter((d) => !candidates.some((o) => o !== d && under(d, o))).sort();
}

/**
 * Where a content block would make the provider fetch a URL (an image or document given by
 * `source: {type: 'url'}`), or undefined. Tool inputs are the model's own words, not content.
 */
function urlSource(v: unknown, key = ''): string | undefined {
  if (key === 'input') return undefined;
  if (Array.isArray(v)) {
    for (const x of v) {
      const found = urlSource(x);
      if (found) return found;
    }
    return undefined;
  }
  if (!isObject(v)) return undefined;
  if (isObject(v.source) && v.source.type === 'url')
    return typeof v.type === 'string' ? logName(v.type) : 'block';
  for (const [k, x] of Object.entries(v)) {
    const found = urlSource(x, k);
    if (found) return found;
  }
  return undefined;
}

type ParamsResult =
  | { ok: true; params: Record<string, unknown> }
  | { ok: false; code: 'model_request_invalid' | 'model_request_url_source'; reason: string };

/** One set of message parameters (a request, a batch entry's `params`, a fallback). */
function filterParams(
  params: Record<string, unknown>,
  policy: ModelRequestPolicy,
  domains: string[],
  removed: string[],
): ParamsResult {
  const out: Record<string, unknown> = { ...params };
  const invalid = (reason: string): ParamsResult => ({
    ok: false,
    code: 'model_request_invalid',
    reason,
  });
  // The MCP connector has the provider connect to any server the request names, with any
  // token: a way out that no allowlist rule can describe. MCP servers run in the sandbox.
  if (Object.hasOwn(out, 'mcp_servers')) {
    delete out.mcp_servers;
    removed.push('mcp_servers');
  }
  const removedNames = new Set<string>();
  if (out.tools !== undefined && out.tools !== null) {
    if (!Array.isArray(out.tools)) return invalid('"tools" is not a list');
    const kept: unknown[] = [];
    for (const tool of out.tools) {
      if (!isObject(tool)) return invalid('an entry of "tools" is not an object');
      if (tool.type !== undefined && tool.type !== null && typeof tool.type !== 'string')
        return invalid('a tool\'s "type" is not a string');
      const type = (tool.type ?? undefined) as string | undefined;
      const kind = kindOf(type);
      const enabled =
        kind === 'client' ||
        kind === 'provider_only' ||
        (kind !== undefined && (policy.serverTools as readonly string[]).includes(kind));
      const web = kind !== undefined && WEB_TOOLS.has(kind);
      if (!enabled || (web && domains.length === 0)) {
        removed.push(logName(type ?? String(tool.name)));
        if (typeof tool.name === 'string') removedNames.add(tool.name);
        continue;
      }
      if (web) {
        // The operator's allowlist decides, whatever the agent asked for: its own
        // blocked_domains would leave everything else open, its allowed_domains anything.
        const { blocked_domains: _blocked, ...rest } = tool;
        kept.push({ ...rest, allowed_domains: domains });
        continue;
      }
      kept.push(tool);
    }
    out.tools = kept;
  }
  const choice = out.tool_choice;
  if (isObject(choice) && typeof choice.name === 'string' && removedNames.has(choice.name)) {
    // Forcing a tool that is no longer offered would fail the request; let the model pick.
    const { name: _name, type: _type, ...rest } = choice;
    out.tool_choice = { ...rest, type: 'auto' };
  }
  const url = urlSource([out.messages, out.system]);
  if (url)
    return {
      ok: false,
      code: 'model_request_url_source',
      reason: `a ${url} block whose source is a URL would have the model provider fetch it, outside errand's allowlist; download it through the sandbox and send it as base64`,
    };
  if (Array.isArray(out.fallbacks)) {
    const fallbacks: unknown[] = [];
    for (const f of out.fallbacks) {
      if (!isObject(f)) {
        fallbacks.push(f);
        continue;
      }
      const r = filterParams(f, policy, domains, removed);
      if (!r.ok) return r;
      fallbacks.push(r.params);
    }
    out.fallbacks = fallbacks;
  }
  return { ok: true, params: out };
}

/**
 * Decides what of a request to the model API is sent on. Pure: the same body and policy give
 * the same answer. Covers a Messages request (and count_tokens) at the top level and a batch's
 * `requests[].params`; the caller sends the returned body, never the bytes it received.
 */
export function filterModelRequest(body: unknown, policy: ModelRequestPolicy): ModelRequestVerdict {
  if (!isObject(body))
    return {
      action: 'refuse',
      code: 'model_request_invalid',
      reason: 'the request body is not a JSON object',
    };
  const domains = apiDomains(policy.allowedHosts);
  const removed: string[] = [];
  const top = filterParams(body, policy, domains, removed);
  if (!top.ok) return { action: 'refuse', code: top.code, reason: top.reason };
  const out = top.params;
  if (Array.isArray(out.requests)) {
    const requests: unknown[] = [];
    for (const entry of out.requests) {
      if (!isObject(entry) || !isObject(entry.params)) {
        requests.push(entry);
        continue;
      }
      const r = filterParams(entry.params, policy, domains, removed);
      if (!r.ok) return { action: 'refuse', code: r.code, reason: r.reason };
      requests.push({ ...entry, params: r.params });
    }
    out.requests = requests;
  }
  return { action: 'forward', body: out, removed: [...new Set(removed)] };
}
