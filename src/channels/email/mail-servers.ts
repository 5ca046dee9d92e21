/**
 * How errand connects to a repository's mail servers, in one place for receiving, sending
 * and `errand check`. Certificates are always verified, against the CAs of
 * `trustedCas` (the system's store and NODE_EXTRA_CA_CERTS); `security: none` is accepted
 * by the config for loopback only.
 */
import type { ImapFlowOptions } from 'imapflow';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { trustedCas } from '../../util/trusted-cas.ts';

export interface MailServer {
  host: string;
  port: number;
  security: 'tls' | 'starttls' | 'none';
  user: string;
  password: string;
}

export function imapOptions(s: MailServer): ImapFlowOptions {
  return {
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    // starttls: refuse a server that does not offer it, rather than go on in plain text.
    doSTARTTLS: s.security === 'starttls' ? true : s.security === 'none' ? false : undefined,
    auth: { user: s.user, pass: s.password },
    tls: { ca: trustedCas() },
    logger: false,
  };
}

export function smtpOptions(s: MailServer): SMTPTransport.Options {
  return {
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    requireTLS: s.security === 'starttls',
    ignoreTLS: s.security === 'none',
    auth: { user: s.user, pass: s.password },
    tls: { ca: trustedCas() },
  };
}

// Node's codes for a chain that does not lead to a trusted CA.
const UNTRUSTED_CHAIN = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

// nodemailer replaces an error's code with its own (ESOCKET); Node's message remains.
const CODE_BY_MESSAGE: Array<[RegExp, string]> = [
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
];

/**
 * A certificate failure in words an operator can act on (Node's own hint names a flag of
 * node, not of errand); undefined for any other error.
 */
export function describeCertificateFailure(e: unknown, host: string): string | undefined {
  const err = e as { code?: string; message?: string; cause?: { code?: string } };
  const code =
    [err.code, err.cause?.code].find(
      (c) => c && (UNTRUSTED_CHAIN.has(c) || c.startsWith('CERT_') || c.startsWith('ERR_TLS_CERT')),
    ) ?? CODE_BY_MESSAGE.find(([re]) => re.test(err.message ?? ''))?.[1];
  if (!code) return undefined;
  if (UNTRUSTED_CHAIN.has(code))
    return `its certificate does not lead to a CA errand trusts (${code}); if the server uses a private CA, add it to the system's CA store or start errand with NODE_EXTRA_CA_CERTS=/path/to/ca.pem`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `its certificate is not issued for ${host}; set host to a name the certificate names`;
  return `its certificate was refused (${code})`;
}
