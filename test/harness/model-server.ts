import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority } from '../../src/proxy/index.ts';

export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown> }
  /** Answers the whole request with this HTTP error instead. */
  | { type: 'http_error'; status: number; message: string };

export interface ModelRequest {
  headers: IncomingHttpHeaders;
  body: {
    model?: string;
    messages?: Array<{ role: string; content: unknown }>;
    tools?: unknown[];
    stream?: boolean;
  };
  /** The latest user turn with text, without the CLI's <system-reminder> blocks. */
  lastUserText: string;
  /** True when the last user turn carries tool results. */
  afterToolResult: boolean;
  /** The text of those tool results ('' when there are none). */
  toolResultText: string;
}

/**
 * A scenario answers each request with content blocks; a promise holds the answer back
 * until it resolves (the CLI waits on its request meanwhile).
 */
export type Scenario = (req: ModelRequest) => Block[] | Promise<Block[]>;

function textOf(content: unknown): { text: string; toolResult: boolean; resultText: string } {
  if (typeof content === 'string') return { text: content, toolResult: false, resultText: '' };
  if (!Array.isArray(content)) return { text: '', toolResult: false, resultText: '' };
  const results = content.filter((c: { type?: string }) => c.type === 'tool_result');
  const text = content
    .filter((c: { type?: string }) => c.type === 'text')
    .map((c: { text?: string }) => c.text ?? '')
    .join('\n');
  const resultText = results
    .map((r: { content?: unknown }) =>
      typeof r.content === 'string' ? r.content : textOf(r.content).text,
    )
    .join('\n');
  return { text, toolResult: results.length > 0, resultText };
}

/**
 * A scripted server that speaks the Anthropic Messages API (streaming events, text and
 * tool_use blocks, usage), so the real Claude Code CLI runs without a model service. It
 * records every request, API key included.
 */
export async function startModelServer(dir: string, host: string, scenario: Scenario) {
  const ca = await CertificateAuthority.loadOrCreate(dir);
  const ctx = await ca.contextFor(host);
  const requests: ModelRequest[] = [];
  let n = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c) => {
      raw += c;
    });
    req.on('end', async () => {
      if (!req.url?.startsWith('/v1/messages')) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(raw || '{}') as ModelRequest['body'];
      if (req.url.startsWith('/v1/messages/count_tokens')) {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ input_tokens: 10 }));
        return;
      }
      // The task's text is the latest user turn with words in it; turns that only carry
      // tool results (and the CLI's reminders) come after it.
      const users = (body.messages ?? []).filter((m) => m.role === 'user');
      const strip = (t: string) =>
        t.replace(/<system-reminder>[\s\S]*?<\/system-reminder>/g, '').trim();
      const lastUserText =
        [...users]
          .reverse()
          .map((m) => strip(textOf(m.content).text))
          .find((t) => t.length > 0) ?? '';
      const last = textOf(users.at(-1)?.content);
      const request: ModelRequest = {
        headers: req.headers,
        body,
        lastUserText,
        afterToolResult: last.toolResult,
        toolResultText: last.resultText,
      };
      requests.push(request);
      // Side requests without tools (titles, summaries) get a short text.
      const blocks =
        body.tools && body.tools.length > 0
          ? await scenario(request)
          : [{ type: 'text' as const, text: 'Untitled' }];
      const failure = blocks.find((b) => b.type === 'http_error');
      if (failure?.type === 'http_error') {
        res.writeHead(failure.status, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            type: 'error',
            error: {
              type: failure.status === 400 ? 'invalid_request_error' : 'api_error',
              message: failure.message,
            },
          }),
        );
        return;
      }
      const id = `msg_${++n}`;
      const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
      type Out =
        | { type: 'text'; text: string }
        | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };
      const content = blocks.flatMap((b, i): Out[] =>
        b.type === 'text'
          ? [b]
          : b.type === 'tool_use'
            ? [{ type: 'tool_use', id: `toolu_${n}_${i}`, name: b.name, input: b.input }]
            : [],
      );
      const usage = {
        input_tokens: 100,
        output_tokens: 20,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id,
            type: 'message',
            role: 'assistant',
            model: body.model,
            content,
            stop_reason: stopReason,
            stop_sequence: null,
            usage,
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('message_start', {
        type: 'message_start',
        message: {
          id,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...usage, output_tokens: 1 },
        },
      });
      content.forEach((b, index) => {
        if (b.type === 'text') {
          send('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'text', text: '' },
          });
          send('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'text_delta', text: (b as { text: string }).text },
          });
        } else {
          const tu = b as { id: string; name: string; input: unknown };
          send('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'tool_use', id: tu.id, name: tu.name, input: {} },
          });
          send('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: JSON.stringify(tu.input) },
          });
        }
        send('content_block_stop', { type: 'content_block_stop', index });
      });
      send('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: usage.output_tokens },
      });
      send('message_stop', { type: 'message_stop' });
      res.end();
    });
  };
  // The CLI on the host (benchmarks) connects to `localhost`; the proxy, to `host`.
  const localCtx = await ca.contextFor('localhost');
  const server = createHttpsServer(
    { SNICallback: (name, cb) => cb(null, name === 'localhost' ? localCtx : ctx) },
    handler,
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // The same API on plain HTTP, for running the CLI on the host without errand (benchmarks).
  const plain = createHttpServer(handler);
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  return {
    requests,
    caPem: ca.certPem,
    port: (server.address() as AddressInfo).port,
    plainPort: (plain.address() as AddressInfo).port,
    close: () =>
      Promise.all(
        [server, plain].map(
          (s) =>
            new Promise<void>((r) => {
              s.closeAllConnections();
              s.close(() => r());
            }),
        ),
      ).then(() => undefined),
  };
}
