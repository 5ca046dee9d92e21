/**
 * A gateway with the real email channel, wired to a real Dovecot and a real SMTP server on
 * loopback, on a real SQLite store, with a scripted executor (or one the test gives).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmailChannel } from '../../src/channels/email/index.ts';
import type { DnsResolver } from '../../src/channels/email/sender-auth.ts';
import type { StoredMessage } from '../../src/domain/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { TaskExecutor } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { DovecotServer } from './dovecot-server.ts';
import { configFrom, eventually } from './gateway-fixture.ts';
import { ScriptedExecutor } from './scripted-executor.ts';
import { SmtpCatcher } from './smtp-catcher.ts';

export interface EmailFixture {
  dir: string;
  imap: DovecotServer;
  smtp: SmtpCatcher;
  store: Store;
  gateway: Gateway;
  channel: EmailChannel;
  executor: TaskExecutor;
  /** Stops the gateway only (the servers keep running): a restart test starts another. */
  stopGateway(): Promise<void>;
  close(): Promise<void>;
}

export interface EmailFixtureOptions {
  /** Extra keys under `repos.app.email`, as YAML lines indented by 6. */
  email?: string;
  /** Extra keys under `repos.app`, as YAML lines indented by 4. */
  repo?: string;
  resolver?: DnsResolver;
  executor?: TaskExecutor;
  imap?: DovecotServer;
  smtp?: SmtpCatcher;
  dir?: string;
  pollSeconds?: number;
  /** `authorized_senders`; default alice@sender.test and *@team.test. */
  authorizedSenders?: string[];
  /** More repositories, as YAML lines under `repos` (indent 2); `channel` stays app's. */
  otherRepos?: string;
}

export function emailYaml(imap: DovecotServer, smtp: SmtpCatcher, o: EmailFixtureOptions): string {
  return `execution:
  shutdown_grace_seconds: 1
dashboard:
  base_url: https://errand.example.com
repos:
  app:
    git_url: /srv/app.git
${o.repo ?? ''}    email:
      address: errand@example.com
      imap: { host: 127.0.0.1, port: ${imap.port}, security: none, user: errand@example.com, password: ${imap.users[0]!.password} }
      smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, user: ${smtp.user}, password: ${smtp.password} }
      authorized_senders: ${JSON.stringify(o.authorizedSenders ?? ['alice@sender.test', '*@team.test'])}
      poll_seconds: ${o.pollSeconds ?? 3600}
${o.email ?? '      trusted_authserv_id: mx.example.com\n'}${o.otherRepos ?? ''}`;
}

export async function emailFixture(o: EmailFixtureOptions = {}): Promise<EmailFixture> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'errand-email-'));
  const imap = o.imap ?? (await DovecotServer.start());
  const smtp = o.smtp ?? (await SmtpCatcher.start());
  const config = await configFrom(emailYaml(imap, smtp, o), dir);
  const store = openSqliteStore(join(dir, 'state.db'));
  const executor = o.executor ?? new ScriptedExecutor({ hang: false });
  let channel: EmailChannel | undefined;
  const gateway = new Gateway({
    store,
    executor,
    config,
    logger: silentLogger(),
    channelFactory: (repoId, repo) => {
      const made = new EmailChannel(repoId, repo.email!, {
        logger: silentLogger(),
        attachmentsDir: join(dir, 'attachments'),
        resolver: o.resolver,
        reconnectBackoffMs: 100,
      });
      if (repoId === 'app') channel = made;
      return [made];
    },
    deliveryRetry: { baseDelayMs: 50, maxAttempts: 5 },
  });
  await gateway.start();
  let gatewayStopped = false;
  const stopGateway = async () => {
    if (gatewayStopped) return;
    gatewayStopped = true;
    await gateway.shutdown();
    await store.close();
  };
  return {
    dir,
    imap,
    smtp,
    store,
    gateway,
    channel: channel!,
    executor,
    stopGateway,
    async close() {
      await stopGateway();
      if (!o.imap) await imap.close();
      if (!o.smtp) await smtp.close();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The Authentication-Results line a trusted receiving server would add for a DKIM pass. */
export function passingAuthResults(domain: string, authserv = 'mx.example.com'): string {
  return `Authentication-Results: ${authserv}; dkim=pass header.d=${domain} header.s=test; spf=pass smtp.mailfrom=${domain}; dmarc=pass (p=REJECT) header.from=${domain}`;
}

/**
 * Waits until `count` mails ended answered or rejected, and returns them by subject (tests
 * give each mail its own).
 */
export async function settledBySubject(
  store: Store,
  count: number,
): Promise<Map<string, StoredMessage>> {
  const settled = await eventually(
    async () => {
      const all = await store.listMessages({ states: ['rejected', 'answered'] });
      return all.length >= count ? all : undefined;
    },
    'every mail settled',
    20_000,
  );
  return new Map(settled.map((m) => [m.subject ?? '', m]));
}
