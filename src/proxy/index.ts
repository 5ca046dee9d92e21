export { isPrivateAddress, resolveUpstream } from './address-guard.ts';
export {
  ALLOWLIST_FILE,
  type Allowlist,
  type AllowRule,
  allowlistSchema,
  type Decision,
  decide,
  normalizePath,
  parseAllowlist,
} from './allowlist.ts';
export {
  type ActiveAwsCredential,
  type AwsCredential,
  awsEnv,
  awsSurrogatesFor,
  MAX_PRESIGNED_LIFETIME_SECONDS,
  resignAws,
} from './aws-resign.ts';
export { CertificateAuthority } from './ca.ts';
export { MAX_MODEL_REQUEST, type ModelApiPolicy } from './model-api-body.ts';
export {
  apiDomains,
  filterModelRequest,
  hostsOpenToGet,
  type ModelRequestPolicy,
  type ModelRequestVerdict,
} from './model-request-filter.ts';
export { fileNetworkLog, type NetworkLogEntry } from './network-log.ts';
export { type ProxyPolicy, ProxyServer, type ProxySession } from './proxy-server.ts';
export { formsOf, type MaskForm, ReflectionMask } from './reflection-mask.ts';
export { type CheckedResponse, checkResponse } from './response-check.ts';
export {
  type ActiveSurrogate,
  type MaskedSecret,
  makeSurrogate,
  surrogatesFor,
  swapSurrogates,
} from './surrogates.ts';
export { openTaskNetwork, type TaskNamespace, type TaskNetwork } from './task-network.ts';
