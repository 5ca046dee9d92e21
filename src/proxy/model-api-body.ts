import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { normalizePath } from './allowlist.ts';
import { type BodyRead, overBudget } from './body-reader.ts';
import type { ModelRequestVerdict } from './model-request-filter.ts';

/**
 * The model API the agent talks to, whose request bodies are checked before they leave:
 * the provider runs some tools itself (web fetch, MCP servers), outside the proxy.
 */
export interface ModelApiPolicy {
  /** The API host (lower case), as the agent's requests name it. */
  host: string;
  /** Decides what of a parsed request body is sent on; a throw refuses it. */
  filter: (body: unknown) => ModelRequestVerdict;
}

/** Larger than any Messages request the API takes (32 MB), room for most batches. */
export const MAX_MODEL_REQUEST = 64 * 1024 * 1024;

export type ModelApiStep =
  | { kind: 'forward'; body: Buffer; removed: string[] }
  | { kind: 'refuse'; status: number; code: string; message: string };

/** Whether a request is one whose body the model API reads as message parameters. */
export function isModelRequest(api: ModelApiPolicy, host: string, target: string): boolean {
  if (host !== api.host) return false;
  const norm = normalizePath(target.split('?')[0]!);
  // Lower case: a path the API might route alike must not skip the check.
  return norm.ok && norm.path.toLowerCase().startsWith('/v1/messages');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a model API request's body whole, parses it and lets the policy's filter decide.
 * What is forwarded is always the filter's result, serialized again: the bytes received
 * never go on, so a body cannot mean one thing to errand and another to the API (duplicate
 * keys, encodings). Sets the headers that describe the new body.
 */
export async function checkModelRequest(
  api: ModelApiPolicy,
  req: IncomingMessage,
  headers: IncomingHttpHeaders,
  /** Reads the body whole, at most `max` bytes, within the task's budget (`readBody`). */
  read: (max: number) => Promise<BodyRead>,
  max = MAX_MODEL_REQUEST,
): Promise<ModelApiStep> {
  const refuse = (status: number, code: string, message: string): ModelApiStep => ({
    kind: 'refuse',
    status,
    code,
    message,
  });
  const tooLarge = () =>
    refuse(
      413,
      'model_request_too_large',
      `a model API request body over ${max} bytes is not checked and not sent`,
    );
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    // errand cannot check what it does not read: a compressed body would carry its tools past.
    return refuse(
      415,
      'model_request_encoded',
      `a model API request body in Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not checked; send it uncompressed`,
    );
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return tooLarge();
  const got = await read(max);
  if (!got.ok)
    return got.why === 'too_large' ? tooLarge() : { kind: 'refuse', ...overBudget(got.budget) };
  const raw = got.body;
  if (raw.length === 0) {
    headers['content-length'] = '0';
    return { kind: 'forward', body: raw, removed: [] };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(raw));
  } catch {
    // The parser's message would quote the body back; the code says enough.
    return refuse(400, 'model_request_invalid', 'the model API request body is not JSON in UTF-8');
  }
  const verdict = api.filter(parsed);
  if (verdict.action === 'refuse')
    return refuse(
      verdict.code === 'model_request_invalid' ? 400 : 403,
      verdict.code,
      verdict.reason,
    );
  const body = Buffer.from(JSON.stringify(verdict.body));
  delete headers['content-encoding'];
  delete headers.expect;
  // The body goes out whole with its own length: a chunked framing copied from the
  // sandbox's request beside it would give the upstream two lengths to choose from.
  delete headers['transfer-encoding'];
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(body.length);
  return { kind: 'forward', body, removed: verdict.removed };
}
