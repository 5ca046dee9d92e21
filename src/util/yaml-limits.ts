import { CST, type Document, Lexer } from 'yaml';

/**
 * The limits every YAML file errand reads is parsed under: the trusted files of a
 * repository's default branch (`.errand/sandbox.yaml`, `.errand/network-allowlist.yaml`)
 * and the server config. A hostile file must end in a refusal naming it, never in an
 * internal error or in errand's memory growing with what the file expands to.
 */
export const YAML_LIMITS = {
  /** Bytes of text; these files are a few KB. */
  bytes: 1024 * 1024,
  /**
   * Collections nested in one another, counted on the lexer's tokens before any parse:
   * yaml's parser holds every open level (about 600 bytes of memory for each byte of
   * `[[[[…`), so depth is refused before it runs.
   */
  depth: 64,
  /** yaml's `maxAliasCount`: how far aliases (`*name`) may expand (billion laughs). */
  aliasCount: 100,
} as const;

/** 1048576 bytes as `1 MiB`, for messages. */
const SIZE = `${YAML_LIMITS.bytes / 1024 / 1024} MiB`;

/**
 * What is wrong with `text` before it is parsed: more than YAML_LIMITS.bytes, or
 * collections nested deeper than YAML_LIMITS.depth. Undefined when within both.
 * Depth is flow collections open (`[`, `{`) plus the block indicators (`-`, `?`, `:`) on
 * the current line, so `- - - x` counts as `[[[x]]]` does; nesting by indentation costs
 * its square in bytes and stays within the size limit.
 */
export function yamlShapeProblem(text: string): string | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > YAML_LIMITS.bytes)
    return `it is ${bytes} bytes, more than the ${SIZE} (${YAML_LIMITS.bytes} bytes) errand reads; make it smaller`;
  let flow = 0;
  let line = 0;
  for (const token of new Lexer().lex(text)) {
    switch (CST.tokenType(token)) {
      case 'flow-map-start':
      case 'flow-seq-start':
        flow++;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        flow = Math.max(0, flow - 1);
        break;
      case 'seq-item-ind':
      case 'explicit-key-ind':
      case 'map-value-ind':
        line++;
        break;
      case 'newline':
        line = 0;
        break;
    }
    if (flow + line > YAML_LIMITS.depth)
      return `its collections are nested more than ${YAML_LIMITS.depth} levels deep, more than errand reads; flatten it`;
  }
  return undefined;
}

/**
 * The document's value, with aliases expanded no further than YAML_LIMITS.aliasCount
 * allows: an alias bomb is a problem naming the limit, not a throw.
 */
export function yamlValue(
  doc: Document,
): { ok: true; value: unknown } | { ok: false; problem: string } {
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: YAML_LIMITS.aliasCount }) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // yaml tells an expansion past maxAliasCount only by this message.
    if (e instanceof ReferenceError && /alias count/i.test(message))
      return {
        ok: false,
        problem: `its aliases (*name) expand past errand's limit of ${YAML_LIMITS.aliasCount} alias uses; write the repeated values out instead`,
      };
    return { ok: false, problem: `not valid YAML: ${message.split('\n')[0]}` };
  }
}
