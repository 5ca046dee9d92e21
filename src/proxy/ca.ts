import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
/** Host certificates kept at once; the least recently used beyond are made again on demand. */
const DEFAULT_MAX_HOSTS = 1000;
/** The name on the certificate shown to a client that named no server (no SNI). */
const NO_SERVER_NAME = 'no-server-name.errand.invalid';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

function serial(): string {
  // Positive, 16 bytes: unique per certificate without keeping a counter.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/**
 * errand's own certificate authority: generated on first start, its private key readable
 * only by errand, its certificate trusted inside sandboxes. It signs a certificate for each
 * host a sandbox connects to, so the proxy can read and check the request.
 */
export class CertificateAuthority {
  readonly certPem: string;
  readonly #cert: x509.X509Certificate;
  readonly #key: webcrypto.CryptoKey;
  readonly #leafKeys: webcrypto.CryptoKeyPair;
  readonly #leafKeyPem: string;
  readonly #maxHosts: number;
  /** Insertion order is use order: the first key is the least recently used. */
  readonly #contexts = new Map<string, Promise<SecureContext>>();
  #noServerName: SecureContext | undefined;

  private constructor(
    cert: x509.X509Certificate,
    key: webcrypto.CryptoKey,
    leafKeys: webcrypto.CryptoKeyPair,
    leafKeyPem: string,
    maxHosts: number,
  ) {
    this.#cert = cert;
    this.#key = key;
    this.#leafKeys = leafKeys;
    this.#leafKeyPem = leafKeyPem;
    this.#maxHosts = maxHosts;
    this.certPem = cert.toString('pem');
  }

  /**
   * Loads the CA from `dir`, creating it (key mode 0600) when absent. `maxHosts`: host
   * certificates kept in memory at once (default 1,000).
   */
  static async loadOrCreate(
    dir: string,
    opts: { maxHosts?: number } = {},
  ): Promise<CertificateAuthority> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const certPath = join(dir, 'ca.pem');
    const keyPath = join(dir, 'ca.key');
    let cert: x509.X509Certificate;
    let key: webcrypto.CryptoKey;
    if (existsSync(certPath) && existsSync(keyPath)) {
      chmodSync(keyPath, 0o600);
      cert = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
      const der = Buffer.from(
        readFileSync(keyPath, 'utf8').replace(/-----[^-]+-----|\s/g, ''),
        'base64',
      );
      key = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
    } else {
      const keys = (await webcrypto.subtle.generateKey(ALG, true, [
        'sign',
        'verify',
      ])) as webcrypto.CryptoKeyPair;
      cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial(),
        name: `CN=errand sandbox CA ${randomBytes(4).toString('hex')}, O=errand`,
        notBefore: new Date(Date.now() - DAY),
        notAfter: new Date(Date.now() + 3650 * DAY),
        keys,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      writeFileSync(keyPath, pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), {
        mode: 0o600,
      });
      writeFileSync(certPath, cert.toString('pem'), { mode: 0o644 });
      key = keys.privateKey;
    }
    // One key for every host certificate of this process: generating a key per host would
    // cost more than it protects, since all of them live in this process only.
    const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const leafKeyPem = pemKey(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
    const ca = new CertificateAuthority(
      cert,
      key,
      leafKeys,
      leafKeyPem,
      opts.maxHosts ?? DEFAULT_MAX_HOSTS,
    );
    ca.#noServerName = await ca.#issue(NO_SERVER_NAME);
    return ca;
  }

  /**
   * The context for a client that named no server: its certificate is for no real name, so
   * no client that checks names accepts it, and one that does not gets the proxy's refusal.
   */
  get noServerNameContext(): SecureContext {
    return this.#noServerName!;
  }

  /** How many host certificates are kept now (at most `maxHosts`). */
  get cachedHosts(): number {
    return this.#contexts.size;
  }

  /**
   * A TLS context presenting a certificate for `host` (a canonical name), kept for the
   * `maxHosts` most recently used hosts: the memory a task can make errand spend is bounded.
   */
  contextFor(host: string): Promise<SecureContext> {
    let ctx = this.#contexts.get(host);
    if (ctx) {
      this.#contexts.delete(host);
    } else {
      ctx = this.#issue(host);
      // A failed issue is not kept: the next handshake tries again.
      ctx.catch(() => {
        if (this.#contexts.get(host) === ctx) this.#contexts.delete(host);
      });
    }
    this.#contexts.set(host, ctx);
    if (this.#contexts.size > this.#maxHosts)
      this.#contexts.delete(this.#contexts.keys().next().value!);
    return ctx;
  }

  async #issue(host: string): Promise<SecureContext> {
    const isIp = /^[\d.]+$/.test(host) || host.includes(':');
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host}`,
      issuer: this.#cert.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      signingKey: this.#key,
      publicKey: this.#leafKeys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: isIp ? 'ip' : 'dns', value: host }]),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.BasicConstraintsExtension(false),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert),
      ],
    });
    return createSecureContext({
      key: this.#leafKeyPem,
      cert: `${leaf.toString('pem')}\n${this.certPem}`,
    });
  }
}
