import type { Allowlist } from './allowlist.ts';
import { type AwsCredential, awsEnv, awsSurrogatesFor } from './aws-resign.ts';
import type { ModelApiPolicy } from './model-api-body.ts';
import { type AcceptConnection, type SandboxNetns, startSandboxNetns } from './netns.ts';
import type { NetworkLogEntry } from './network-log.ts';
import type { ProxyServer } from './proxy-server.ts';
import { type MaskedSecret, surrogatesFor } from './surrogates.ts';

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
  podmanEnv: NodeJS.ProcessEnv,
  /** Where the namespace comes from; default: a new one (errand keeps one warm). */
  netnsFor: (accept: AcceptConnection) => Promise<SandboxNetns> = async (accept) => {
    const ns = await startSandboxNetns(podmanEnv);
    ns.attach(accept);
    return ns;
  },
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
  let netns: SandboxNetns;
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
