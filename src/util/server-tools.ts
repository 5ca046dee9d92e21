/**
 * Tools the model provider runs on its own servers that an operator may turn on for a
 * repository (`repos.<repo>.agent.server_tools`). They reach the internet from the
 * provider, outside errand's proxy, so each is off unless listed. Here so the config schema
 * and the proxy's filter share one list without importing each other.
 */
export const SERVER_TOOL_KINDS = ['web_search', 'web_fetch', 'code_execution'] as const;
export type ServerToolKind = (typeof SERVER_TOOL_KINDS)[number];
