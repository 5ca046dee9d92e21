import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { S3Client } from '@aws-sdk/client-s3';
import {
  awsSurrogatesFor,
  CertificateAuthority,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
} from '../../src/proxy/index.ts';
import { connectToSession, startUpstream } from './upstream.ts';

/** The real key: only errand's host process holds it. */
export const REAL = {
  accessKeyId: 'AKIAREALKEY000000001',
  secretAccessKey: 'realSecret/Key+0123456789abcdefghijABCDEFG',
  sessionToken: 'IQoJb3JpZ2luX2VjEREALSESSIONTOKEN0123456789',
};
export const S3 = 'bucket.s3.us-east-1.amazonaws.com';
/** An S3 bucket whose allowlist rule admits only `/public/*`. */
export const LOCKED = 'locked.s3.us-east-1.amazonaws.com';
export const SQS = 'sqs.eu-west-1.amazonaws.com';
export const STS = 'sts.us-east-1.amazonaws.com';
export const OTHER = 'other.test.example';

export type AwsFixture = Awaited<ReturnType<typeof startAwsFixture>>;

/**
 * A proxy session whose task holds surrogate AWS keys scoped to `*.amazonaws.com`, in front
 * of a recording HTTPS upstream that answers for every AWS name above.
 */
export async function startAwsFixture() {
  const dir = mkdtempSync(join(tmpdir(), 'errand-aws-'));
  const ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  const names = [S3, LOCKED, SQS, STS, OTHER];
  const upstream = await startUpstream(join(dir, 'up'), names);
  const allow = parseAllowlist(
    `allow:\n${[S3, SQS, STS, OTHER].map((h) => `  - host: ${h}\n`).join('')}  - host: ${LOCKED}\n    paths: ["/public/*"]\n`,
  );
  assert.ok(allow.ok);
  const active = awsSurrogatesFor([{ name: 'AWS_PROD', ...REAL, hosts: ['*.amazonaws.com'] }]);
  const log: NetworkLogEntry[] = [];
  const session: ProxySession = new ProxyServer({ ca }).openSession({
    taskId: 't_aws',
    allowlist: allow.allowlist,
    surrogates: [],
    aws: active,
    resolve: Object.fromEntries(names.map((h) => [h, `127.0.0.1:${upstream.httpsPort}`])),
    upstreamCa: upstream.caPem,
    log: (e) => log.push(e),
  });
  /** An HTTPS agent whose every connection is one the sandbox relay hands to the proxy. */
  const agent = new HttpsAgent();
  (agent as unknown as { createConnection: unknown }).createConnection = (
    o: { servername?: string; host?: string },
    cb: (e: Error | null, s?: unknown) => void,
  ) => {
    connectToSession(session, 443).then(
      (raw) =>
        cb(null, tlsConnect({ socket: raw, servername: o.servername ?? o.host, ca: ca.certPem })),
      (e: Error) => cb(e),
    );
    return undefined;
  };
  return {
    ca,
    upstream,
    session,
    active,
    surrogate: active[0]!.surrogate,
    log,
    /** The AWS SDK's S3 client as a program in the sandbox would use it: surrogate keys. */
    s3Client: () =>
      new S3Client({
        region: 'us-east-1',
        credentials: active[0]!.surrogate,
        requestHandler: { httpsAgent: agent },
        maxAttempts: 1,
      }),
    close: async () => {
      agent.destroy();
      await session.close();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
