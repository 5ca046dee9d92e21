/**
 * S3's CopyObject and UploadPartCopy name a second object in `x-amz-copy-source`, which S3
 * reads with the signer's key. Re-signed with the real key, that read must be one the
 * allowlist would let the sandbox make itself: this file says which requests those are.
 */

/** Where S3 would read a copy source from: as a virtual-hosted and as a path-style GET. */
export interface CopySourceRead {
  host: string;
  /** As in the header: still percent-encoded, as a request target's path is. */
  rawPath: string;
}

/** The header (or, in a presigned URL, the query parameter) naming the object to copy. */
export const COPY_SOURCE = 'x-amz-copy-source';

// The first label of an S3 endpoint: `s3`, `s3-<region>` (legacy), `s3-accelerate`.
// Other endpoints (access points, S3 Express, non-AWS stores) are not read here.
const S3_LABEL = /^s3(-[a-z0-9-]+)?$/;

/**
 * The GET requests equivalent to reading `source` through the S3 endpoint of `host`, or
 * undefined when errand cannot tell which object that is: a host that is not an
 * `amazonaws.com` S3 endpoint, an access-point ARN, a source without a bucket and key.
 */
export function copySourceReads(host: string, source: string): CopySourceRead[] | undefined {
  const labels = host.split('.');
  const at = labels.findIndex((l) => S3_LABEL.test(l));
  const endpoint = labels.slice(at).join('.');
  if (at < 0 || !/^[^.]+(\.[^.]+)*\.amazonaws\.com(\.cn)?$/.test(endpoint)) return undefined;
  // `/bucket/key?versionId=…`, the leading slash optional; the key stays encoded.
  const value = source.trim().replace(/^\//, '').split('?')[0]!;
  const slash = value.indexOf('/');
  if (slash <= 0 || slash === value.length - 1) return undefined;
  const bucket = value.slice(0, slash);
  const key = value.slice(slash + 1);
  if (bucket.startsWith('arn:') || !/^[a-z0-9][a-z0-9.-]*$/.test(bucket)) return undefined;
  return [
    { host: `${bucket}.${endpoint}`, rawPath: `/${key}` },
    { host: endpoint, rawPath: `/${bucket}/${key}` },
  ];
}
