import { z } from 'zod';
import { serverConfigSchema } from './schema.ts';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
}

const PLACEHOLDER: Record<string, string> = {
  repos: '<repo>',
  schedules: '<name>',
  masked_secrets: '<NAME>',
  aws_credentials: '<NAME>',
  env: '<NAME>',
  resolve: '<host>',
};

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (s.anyOf) return 'string (secret)';
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'integer' || s.type === 'number') {
    const range =
      s.minimum !== undefined || s.maximum !== undefined
        ? ` ${s.minimum ?? ''}..${s.maximum ?? ''}`
        : '';
    return `${s.type}${range}`;
  }
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object')
    return 'map';
  return String(s.type ?? 'value');
}

function defaultOf(s: JsonSchema): string {
  if (s.default === undefined) return '';
  if (typeof s.default === 'object')
    return s.type === 'object' ? '' : `\`${JSON.stringify(s.default)}\``;
  return `\`${String(s.default)}\``;
}

/**
 * The table of every config key, generated from the schema's own descriptions, so
 * docs/configuration.md cannot drift from what errand accepts (a test compares them).
 */
export function configReferenceTable(): string {
  const root = z.toJSONSchema(serverConfigSchema, {
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  const rows: string[] = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  const walk = (s: JsonSchema, path: string) => {
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      const p = path ? `${path}.${key}` : key;
      rows.push(
        `| \`${p}\` | ${typeOf(child)} | ${defaultOf(child)} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`,
      );
      if (child.properties) walk(child, p);
      const extra = child.additionalProperties;
      if (extra && typeof extra === 'object' && extra.properties)
        walk(extra, `${p}.${PLACEHOLDER[key] ?? '<key>'}`);
    }
  };
  walk(root, '');
  return rows.join('\n');
}
