// mailauth ships no type declarations; errand uses two functions and reads a few result
// fields, which are typed where they are read (src/channels/email/sender-auth.ts).
declare module 'mailauth' {
  export function authenticate(input: Buffer | string, opts?: object): Promise<unknown>;
}
declare module 'mailauth/lib/dkim/sign.js' {
  export function dkimSign(input: Buffer | string, opts: object): Promise<unknown>;
}
