import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apiDomains,
  filterModelRequest,
  hostsOpenToGet,
  type ModelRequestPolicy,
  parseAllowlist,
} from '../../src/proxy/index.ts';

const NONE: ModelRequestPolicy = { serverTools: [], allowedHosts: [] };
const WEB: ModelRequestPolicy = {
  serverTools: ['web_search', 'web_fetch'],
  allowedHosts: ['docs.example.com', '*.docs.example.com'],
};

const BASH = { type: 'bash_20250124', name: 'bash' };
const CLIENT = { name: 'Bash', description: 'runs a command', input_schema: { type: 'object' } };

function forward(body: unknown, policy = NONE) {
  const v = filterModelRequest(body, policy);
  assert.equal(v.action, 'forward', JSON.stringify(v));
  return v as Extract<typeof v, { action: 'forward' }>;
}

function request(tools: unknown[], extra: Record<string, unknown> = {}) {
  return {
    model: 'm',
    max_tokens: 10,
    messages: [{ role: 'user', content: 'hi' }],
    tools,
    ...extra,
  };
}

// One test per row of the tool table in src/proxy/model-request-filter.ts.
describe('model request filter: tools', () => {
  const rows: Array<{ title: string; tool: Record<string, unknown>; kept: boolean }> = [
    { title: 'keeps a plain client tool (name and input_schema)', tool: CLIENT, kept: true },
    {
      title: 'keeps a client tool of type custom',
      tool: { ...CLIENT, type: 'custom' },
      kept: true,
    },
    {
      title: 'keeps a client tool whose type is null',
      tool: { ...CLIENT, type: null },
      kept: true,
    },
    { title: 'keeps the bash tool', tool: BASH, kept: true },
    {
      title: 'keeps the text editor tool',
      tool: { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' },
      kept: true,
    },
    {
      title: 'keeps the computer use tool',
      tool: {
        type: 'computer_20251124',
        name: 'computer',
        display_width_px: 1,
        display_height_px: 1,
      },
      kept: true,
    },
    {
      title: 'keeps the computer toolset',
      tool: { type: 'computer_toolset_20260801' },
      kept: true,
    },
    {
      title: 'keeps the memory tool',
      tool: { type: 'memory_20250818', name: 'memory' },
      kept: true,
    },
    {
      title: 'keeps tool search, which searches only the request’s own tools',
      tool: { type: 'tool_search_tool_regex_20251119', name: 'tool_search_tool_regex' },
      kept: true,
    },
    {
      title: 'keeps the advisor, a model reading the conversation at the provider',
      tool: { type: 'advisor_20260301', name: 'advisor', model: 'claude-opus-4-6' },
      kept: true,
    },
    {
      title: 'removes web fetch when not enabled',
      tool: { type: 'web_fetch_20250910', name: 'web_fetch' },
      kept: false,
    },
    {
      title: 'removes a later web fetch version when not enabled',
      tool: { type: 'web_fetch_20260318', name: 'web_fetch' },
      kept: false,
    },
    {
      title: 'removes web search when not enabled',
      tool: { type: 'web_search_20250305', name: 'web_search' },
      kept: false,
    },
    {
      title: 'removes code execution when not enabled',
      tool: { type: 'code_execution_20250825', name: 'code_execution' },
      kept: false,
    },
    {
      title: 'removes an MCP toolset (its servers are removed too)',
      tool: { type: 'mcp_toolset', mcp_server_name: 'x' },
      kept: false,
    },
    {
      title: 'removes the browser toolset, which errand does not know',
      tool: { type: 'browser_toolset_20260801' },
      kept: false,
    },
    {
      title: 'removes an unknown versioned tool type',
      tool: { type: 'web_crawl_20270101', name: 'crawl' },
      kept: false,
    },
    {
      title: 'removes a later advisor version, which may reach further',
      tool: { type: 'advisor_20270101', name: 'advisor' },
      kept: false,
    },
  ];
  for (const row of rows) {
    it(row.title, () => {
      const v = forward(request([row.tool, CLIENT]));
      assert.deepEqual(v.body.tools, row.kept ? [row.tool, CLIENT] : [CLIENT]);
      assert.deepEqual(v.removed, row.kept ? [] : [String(row.tool.type)]);
    });
  }

  it('keeps code execution when the operator enabled it', () => {
    const tool = { type: 'code_execution_20250825', name: 'code_execution' };
    const v = forward(request([tool]), { serverTools: ['code_execution'], allowedHosts: [] });
    assert.deepEqual(v.body.tools, [tool]);
  });

  it('does not enable web fetch when only web search is enabled', () => {
    const v = forward(request([{ type: 'web_fetch_20250910', name: 'web_fetch' }]), {
      serverTools: ['web_search'],
      allowedHosts: ['*.example.com', 'example.com'],
    });
    assert.deepEqual(v.body.tools, []);
  });
});

describe('model request filter: enabled web tools', () => {
  it('sets allowed_domains on web search from the allowlist, overriding the agent’s own', () => {
    const v = forward(
      request([
        {
          type: 'web_search_20250305',
          name: 'web_search',
          allowed_domains: ['attacker.example'],
          max_uses: 3,
        },
      ]),
      WEB,
    );
    assert.deepEqual(v.body.tools, [
      {
        type: 'web_search_20250305',
        name: 'web_search',
        allowed_domains: ['docs.example.com'],
        max_uses: 3,
      },
    ]);
  });

  it('replaces the agent’s blocked_domains on web fetch with allowed_domains', () => {
    const v = forward(
      request([{ type: 'web_fetch_20250910', name: 'web_fetch', blocked_domains: ['x.example'] }]),
      WEB,
    );
    assert.deepEqual(v.body.tools, [
      { type: 'web_fetch_20250910', name: 'web_fetch', allowed_domains: ['docs.example.com'] },
    ]);
  });

  it('removes an enabled web tool when the allowlist admits no domain the API can express', () => {
    const v = forward(request([{ type: 'web_fetch_20250910', name: 'web_fetch' }]), {
      serverTools: ['web_fetch'],
      allowedHosts: ['api.github.com'],
    });
    assert.deepEqual(v.body.tools, []);
    assert.deepEqual(v.removed, ['web_fetch_20250910']);
  });
});

describe('model request filter: the rest of the request', () => {
  it('always removes mcp_servers', () => {
    const v = forward(
      {
        ...request([CLIENT]),
        mcp_servers: [{ type: 'url', url: 'https://attacker.example/mcp', name: 'x' }],
      },
      {
        serverTools: ['web_search', 'web_fetch', 'code_execution'],
        allowedHosts: ['*.a.example', 'a.example'],
      },
    );
    assert.equal('mcp_servers' in v.body, false);
    assert.deepEqual(v.removed, ['mcp_servers']);
  });

  it('resets a tool_choice naming a removed tool to auto', () => {
    const v = forward(
      request([{ type: 'web_fetch_20250910', name: 'web_fetch' }, CLIENT], {
        tool_choice: { type: 'tool', name: 'web_fetch', disable_parallel_tool_use: true },
      }),
    );
    assert.deepEqual(v.body.tool_choice, { type: 'auto', disable_parallel_tool_use: true });
  });

  it('keeps a tool_choice naming a kept tool', () => {
    const choice = { type: 'tool', name: 'Bash' };
    const v = forward(request([CLIENT], { tool_choice: choice }));
    assert.deepEqual(v.body.tool_choice, choice);
  });

  it('filters every request of a message batch', () => {
    const v = forward({
      requests: [
        { custom_id: 'a', params: request([{ type: 'web_fetch_20250910', name: 'web_fetch' }]) },
        { custom_id: 'b', params: { ...request([CLIENT]), mcp_servers: [] } },
      ],
    });
    const requests = v.body.requests as Array<{ params: Record<string, unknown> }>;
    assert.deepEqual(requests[0]!.params.tools, []);
    assert.equal('mcp_servers' in requests[1]!.params, false);
    assert.deepEqual(v.removed, ['web_fetch_20250910', 'mcp_servers']);
  });

  it('filters the tools of a fallback', () => {
    const v = forward({
      ...request([CLIENT]),
      fallbacks: [{ model: 'n', tools: [{ type: 'web_fetch_20250910', name: 'web_fetch' }] }],
    });
    assert.deepEqual((v.body.fallbacks as Array<{ tools: unknown }>)[0]!.tools, []);
  });

  it('refuses an image whose source is a URL the provider would fetch', () => {
    const v = filterModelRequest(
      {
        model: 'm',
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't',
                content: [
                  { type: 'image', source: { type: 'url', url: 'https://attacker.example/?d=x' } },
                ],
              },
            ],
          },
        ],
      },
      WEB,
    );
    assert.equal(v.action, 'refuse');
    assert.equal(v.action === 'refuse' && v.code, 'model_request_url_source');
  });

  it('refuses a document whose source is a URL', () => {
    const v = filterModelRequest(
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', source: { type: 'url', url: 'https://attacker.example/a.pdf' } },
            ],
          },
        ],
      },
      NONE,
    );
    assert.equal(v.action === 'refuse' && v.code, 'model_request_url_source');
  });

  it('keeps base64 images and tool inputs that happen to look like URL sources', () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 't', name: 'x', input: { source: { type: 'url', url: 'u' } } },
          ],
        },
      ],
    };
    assert.deepEqual(forward(body).body, body);
  });

  it('refuses a body that is not an object, and tools that are not a list', () => {
    for (const body of [[], 'x', null, { tools: {} }, { tools: ['x'] }, { tools: [{ type: 1 }] }]) {
      const v = filterModelRequest(body, NONE);
      assert.equal(v.action === 'refuse' && v.code, 'model_request_invalid', JSON.stringify(body));
    }
  });

  it('leaves a request without tools as it was', () => {
    const body = { model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] };
    const v = forward(body);
    assert.deepEqual(v.body, body);
    assert.deepEqual(v.removed, []);
  });
});

describe('allowed_domains from the allowlist', () => {
  const rows: Array<{ title: string; hosts: string[]; domains: string[] }> = [
    {
      title: 'gives nothing for a lone exact host (the API’s domain covers its subdomains)',
      hosts: ['api.github.com'],
      domains: [],
    },
    {
      title: 'gives nothing for a lone *.suffix (the API cannot leave out the apex)',
      hosts: ['*.github.com'],
      domains: [],
    },
    {
      title: 'gives the domain for an exact host with its *.host',
      hosts: ['github.com', '*.github.com'],
      domains: ['github.com'],
    },
    {
      title: 'gives a host under a *.suffix, whose subdomains the suffix admits too',
      hosts: ['*.example.com', 'docs.example.com'],
      domains: ['docs.example.com'],
    },
    {
      title: 'leaves out a domain under another listed one',
      hosts: ['example.com', '*.example.com', 'docs.example.com', '*.docs.example.com'],
      domains: ['example.com'],
    },
  ];
  for (const row of rows) {
    it(row.title, () => assert.deepEqual(apiDomains(row.hosts), row.domains));
  }

  it('counts only hosts the allowlist admits for GET on every path', () => {
    const parsed = parseAllowlist(`
allow:
  - host: open.example
  - host: "*.open.example"
    methods: [GET, HEAD]
  - host: star.example
    paths: ["/*"]
  - host: narrow.example
    paths: ["/v1/*"]
  - host: post.example
    methods: [POST]
  - host: root.example
    paths: ["/"]
`);
    assert.ok(parsed.ok);
    assert.deepEqual(hostsOpenToGet(parsed.allowlist), [
      'open.example',
      '*.open.example',
      'star.example',
    ]);
  });
});
