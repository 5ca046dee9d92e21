import { z } from 'zod';

/**
 * `.errand/sandbox.yaml`: how the repository's sandbox runs. Read from the default branch
 * only (the agent cannot loosen it from its workspace). Unknown keys are refused so a
 * misspelt limit does not silently fall back to a default.
 */
export const sandboxFileSchema = z
  .object({
    limits: z
      .object({
        timeout_seconds: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .optional()
          .describe('wall-clock limit of one command or task'),
        memory: z
          .string()
          .regex(/^\d+[bkmg]?$/i, 'a size like 512m or 4g')
          .optional()
          .describe('memory limit; swap is capped at the same value'),
        cpus: z.number().positive().max(512).optional().describe('CPU limit, fractions allowed'),
        pids: z.number().int().min(16).max(1_000_000).optional().describe('process limit'),
      })
      .strict()
      .default({})
      .describe('resource limits; the server config can lower them further'),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
        z.string(),
      )
      .default({})
      .describe('plain environment variables for the container (never secrets)'),
    masked_secrets: z
      .record(
        z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an upper-case environment variable name'),
        z
          .object({
            value: z
              .string()
              .min(1, 'a value, usually !env NAME')
              .describe('the real credential; write !env NAME, never the value'),
            hosts: z
              .array(z.string().min(1))
              .min(1)
              .describe('hosts where the surrogate is swapped for the real value'),
            headers: z
              .array(z.string().min(1))
              .default(['Authorization'])
              .describe('header name globs carrying the credential'),
          })
          .strict(),
      )
      .default({})
      .describe('credentials the sandbox sees only as surrogates (errand sandbox run)'),
    aws_credentials: z
      .record(
        z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an upper-case name'),
        z
          .object({
            access_key_id: z.string().min(1).describe('write !env NAME'),
            secret_access_key: z.string().min(1).describe('write !env NAME'),
            session_token: z.string().min(1).optional().describe('write !env NAME'),
            hosts: z
              .array(z.string().min(1))
              .min(1)
              .describe('hosts whose requests are re-signed with the real key'),
          })
          .strict(),
      )
      .default({})
      .describe('AWS keys the sandbox sees only as surrogates; the proxy re-signs requests'),
  })
  .strict();

export type SandboxFile = z.infer<typeof sandboxFileSchema>;
