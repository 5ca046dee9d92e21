/**
 * A real Dovecot IMAP server on loopback for the email channel's tests, from a config in a
 * temp folder so several can run at once. Dovecot's login processes refuse to run as
 * root, so it runs its processes as `dovenull` and keeps mail as `mail`; every folder above
 * the temp folder must be traversable by them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort } from './cli.ts';

const DOVECOT = '/usr/sbin/dovecot';
const MAIL_UID = 8; // Debian's `mail`
const MAIL_GID = 8;

export interface ImapUser {
  user: string;
  password: string;
}

export interface StoredMail {
  uid: number;
  flags: string[];
  source: string;
}

export class DovecotServer {
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly users: ImapUser[];
  /** Port of implicit TLS (imaps) when started with `tls`; the plain port then offers STARTTLS. */
  readonly tlsPort: number;
  readonly #tls: { certFile: string; keyFile: string } | undefined;
  readonly #dir: string;
  #proc: ChildProcess | undefined;

  private constructor(
    dir: string,
    port: number,
    users: ImapUser[],
    tls: { certFile: string; keyFile: string; port: number } | undefined,
  ) {
    this.#dir = dir;
    this.port = port;
    this.users = users;
    this.#tls = tls;
    this.tlsPort = tls?.port ?? 0;
  }

  static async start(
    users: ImapUser[] = [DEFAULT_USER],
    opts: { tls?: { certFile: string; keyFile: string } } = {},
  ): Promise<DovecotServer> {
    const dir = mkdtempSync(join(tmpdir(), 'errand-dovecot-'));
    chmodSync(dir, 0o755);
    for (const sub of ['run', 'state', 'mail']) mkdirSync(join(dir, sub), { mode: 0o755 });
    chownSync(join(dir, 'mail'), MAIL_UID, MAIL_GID);
    writeFileSync(
      join(dir, 'passwd'),
      users
        .map(
          (u) =>
            `${u.user}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_GID}::${join(dir, 'mail', u.user)}\n`,
        )
        .join(''),
      { mode: 0o644 },
    );
    const server = new DovecotServer(
      dir,
      await freePort(),
      users,
      opts.tls && { ...opts.tls, port: await freePort() },
    );
    writeFileSync(join(dir, 'dovecot.conf'), server.#config());
    await server.#launch();
    return server;
  }

  #config(): string {
    const d = this.#dir;
    return `
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
info_log_path = ${d}/dovecot.log
protocols = imap
listen = 127.0.0.1
${this.#tls ? `ssl = yes\nssl_cert = <${this.#tls.certFile}\nssl_key = <${this.#tls.keyFile}` : 'ssl = no'}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovenull
default_internal_group = dovenull
default_login_user = dovenull
first_valid_uid = ${MAIL_UID}
last_valid_uid = ${MAIL_UID}
first_valid_gid = ${MAIL_GID}
mail_location = maildir:~/Maildir
mail_uid = ${MAIL_UID}
mail_gid = ${MAIL_GID}
imap_idle_notify_interval = 1 secs
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${this.port}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${this.tlsPort}
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
passdb {
  driver = passwd-file
  args = ${d}/passwd
}
userdb {
  driver = passwd-file
  args = ${d}/passwd
}
`;
  }

  async #launch(): Promise<void> {
    const proc = spawn(DOVECOT, ['-F', '-c', join(this.#dir, 'dovecot.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stop() also ends the imap processes serving clients.
      detached: true,
    });
    let output = '';
    proc.stdout?.on('data', (b: Buffer) => (output += b));
    proc.stderr?.on('data', (b: Buffer) => (output += b));
    this.#proc = proc;
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) =>
        reject(new Error(`dovecot exited (${code}): ${output}\n${this.logTail()}`)),
      ),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while (true) {
      const greeting = await Promise.race([greet(this.port), exited]);
      if (greeting.startsWith('* OK')) return;
      if (Date.now() > deadline) throw new Error(`dovecot did not start: ${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server and starts it again on the same port, with the same mail. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.#launch();
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
    // Connections served by child processes would otherwise outlive the server.
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  logTail(): string {
    try {
      return readFileSync(join(this.#dir, 'dovecot.log'), 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Stores a message the way a mail server delivers it: IDLE clients are told. */
  async append(raw: string | Buffer, user = this.users[0]!, flags: string[] = []): Promise<void> {
    await this.#with(user, (c) => c.append('INBOX', raw, flags).then(() => undefined));
  }

  /**
   * Puts messages straight into the user's Maildir, as a local delivery agent does (write
   * in tmp/, rename into new/): thousands in a second, where APPEND waits for each fsync.
   * Clients already in the folder see them at their next check, not by IDLE.
   */
  deliverToMaildir(raws: Iterable<string | Buffer>, user = this.users[0]!): number {
    const maildir = join(this.#dir, 'mail', user.user, 'Maildir');
    for (const sub of ['', '/tmp', '/new', '/cur']) {
      mkdirSync(maildir + sub, { recursive: true, mode: 0o700 });
      chownSync(maildir + sub, MAIL_UID, MAIL_GID);
    }
    chownSync(join(this.#dir, 'mail', user.user), MAIL_UID, MAIL_GID);
    let n = 0;
    const stamp = `${Math.floor(Date.now() / 1000)}.M${process.pid}`;
    for (const raw of raws) {
      const name = `${stamp}Q${n++}.errand-test`;
      writeFileSync(join(maildir, 'tmp', name), raw, { mode: 0o600 });
      chownSync(join(maildir, 'tmp', name), MAIL_UID, MAIL_GID);
      renameSync(join(maildir, 'tmp', name), join(maildir, 'new', name));
    }
    return n;
  }

  async messages(user = this.users[0]!): Promise<StoredMail[]> {
    return await this.#with(user, async (c) => {
      await c.mailboxOpen('INBOX');
      const out: StoredMail[] = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true, source: true })) {
        out.push({ uid: m.uid, flags: [...(m.flags ?? [])], source: m.source?.toString() ?? '' });
      }
      return out;
    }).catch((e: Error) => {
      // An empty mailbox makes `1:*` fail on some servers.
      if (/Invalid messageset|No matching messages/i.test(e.message)) return [];
      throw e;
    });
  }

  /** A plain IMAP client for `user`, not yet connected. */
  client(user = this.users[0]!): ImapFlow {
    const c = new ImapFlow({
      host: this.host,
      port: this.port,
      secure: false,
      doSTARTTLS: false,
      auth: { user: user.user, pass: user.password },
      logger: false,
    });
    c.on('error', () => undefined);
    return c;
  }

  async #with<T>(user: ImapUser, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
    const c = this.client(user);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => c.close());
    }
  }
}

export const DEFAULT_USER: ImapUser = { user: 'errand@example.com', password: 'imap-secret' };

function greet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(2000);
    s.once('data', (b) => {
      resolve(b.toString());
      s.destroy();
    });
    s.once('error', () => resolve(''));
    s.once('timeout', () => {
      resolve('');
      s.destroy();
    });
  });
}
