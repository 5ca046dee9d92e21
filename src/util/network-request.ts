/**
 * One request that tried to leave a sandbox, as the proxy logs it and the gateway and
 * dashboard show it. Here so both sides share it without importing each other.
 * Query values and credentials never appear.
 */
export interface NetworkRequest {
  time: string;
  action: 'allowed' | 'blocked';
  method: string;
  /** Scheme, host and path; query keys only. */
  url: string;
  /** The HTTP status answered; 0 when no request was read (a refused connection). */
  status: number;
  /** Why it was blocked or failed, as a refusal code. */
  code?: string;
  /** Names of the masked secrets whose real values were put in. */
  swapped: string[];
  /** What errand took out of a model API request (server tool types, `mcp_servers`). */
  removed?: string[];
}
