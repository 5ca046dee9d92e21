import type { Allowlist } from './allowlist.ts';
import { type AwsCredential, awsEnv, awsSurrogatesFor } from './aws-resign.ts';
import type { ModelApiPolicy } from './model-api-body.ts';
import type { NetworkLogEntry } from './network-log.ts';
import type { ProxyServer, ProxySession } from './proxy-server.ts';
import { type MaskedSecret, surrogatesFor } from './surrogates.ts';

/** What the proxy needs of the namespace a task's sandbox joins. */
export interface TaskNamespace {
  path: string;
  dns: string;
  close(): Promise<void>;
}

export interface TaskNetwork {
  /** The variables the container gets: surrogates of every masked secret and AWS key. */
  env: Record<string, string>;
  /** The namespace the container joins, and its DNS server. */
  netns: { path: string; dns: string };
  close(): Promise<void>;
}

/**
 * One task's way out: fresh surrogates for its credentials, a proxy session with its
 * policy, and the private namespace whose relay leads to that session. If the namespace
 * cannot start, the session is closed again before the error is thrown.
 */
export async function openTaskNetwork(
  proxy: ProxyServer,
  o: {
    taskId: string;
    allowlist: Allowlist;
    secrets: MaskedSecret[];
    aws: AwsCredential[];
    resolve: Record<string, string>;
    /** Hosts mapped in `resolve` that may get real credentials over plain HTTP; default none. */
    cleartextCredentials?: string[];
    upstreamCa?: string;
    log: (e: NetworkLogEntry) => void;
    /** The model API whose request bodies are filtered; absent: none. */
    modelApi?: ModelApiPolicy;
  },
  /**
   * The sandbox's private namespace, whose connections go to `accept` (the sandbox
   * driver's: the proxy knows no namespace, only the sockets it is handed).
   */
  netnsFor: (accept: ProxySession['accept']) => Promise<TaskNamespace>,
): Promise<TaskNetwork> {
  const surrogates = surrogatesFor(o.secrets);
  const aws = awsSurrogatesFor(o.aws);
  const env: Record<string, string> = Object.fromEntries(
    surrogates.map((s) => [s.name, s.surrogate]),
  );
  Object.assign(env, awsEnv(aws));
  const session = proxy.openSession({
    taskId: o.taskId,
    allowlist: o.allowlist,
    surrogates,
    aws,
    resolve: o.resolve,
    cleartextCredentials: new Set(o.cleartextCredentials),
    upstreamCa: o.upstreamCa,
    log: o.log,
    modelApi: o.modelApi,
  });
  let netns: TaskNamespace;
  try {
    netns = await netnsFor(session.accept);
  } catch (e) {
    await session.close();
    throw e;
  }
  return {
    env,
    netns: { path: netns.path, dns: netns.dns },
    close: async () => {
      await netns.close();
      await session.close();
    },
  };
}
