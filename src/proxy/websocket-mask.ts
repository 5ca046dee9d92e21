import { Transform, type TransformCallback } from 'node:stream';
import type { ReflectionMask } from './reflection-mask.ts';

/** A server frame the proxy cannot read: its payload could carry a real value unseen. */
export class UnreadableFrameError extends Error {
  readonly code = 'websocket_frame_unreadable';
}

/** The header of the frame starting at `off`, or undefined when it is not all here yet. */
function frameHeader(buf: Buffer, off: number): { size: number; payload: number } | undefined {
  if (buf.length - off < 2) return undefined;
  const b0 = buf[off]!;
  const b1 = buf[off + 1]!;
  // RSV bits mean an extension (permessage-deflate) transforms the payload, and a masked
  // server frame hides it (RFC 6455 §5.1 forbids both here): the client would read bytes
  // the proxy cannot check.
  if (b0 & 0x70)
    throw new UnreadableFrameError('the upstream sent a compressed (RSV) WebSocket frame');
  if (b1 & 0x80) throw new UnreadableFrameError('the upstream sent a masked WebSocket frame');
  const len7 = b1 & 0x7f;
  const size = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  if (buf.length - off < size) return undefined;
  const payload =
    len7 === 126
      ? buf.readUInt16BE(off + 2)
      : len7 === 127
        ? Number(buf.readBigUInt64BE(off + 2))
        : len7;
  return { size, payload };
}

/**
 * Masks the upstream → sandbox half of a WebSocket connection frame by frame: headers pass
 * as they are, each payload goes through the mask. Bytes are held back only inside a
 * frame, whose rest is on its way; at a frame's end everything goes on, so a protocol that
 * waits for the client's answer is never stalled. A value split across two frames is not
 * caught (docs/security.md, limits).
 */
export function webSocketMask(mask: ReflectionMask): Transform {
  const m = mask.stream();
  let pending = Buffer.alloc(0);
  /** Payload bytes of the current frame still to come; 0 at a frame header. */
  let left = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pending = Buffer.alloc(0);
      const out: Buffer[] = [];
      let off = 0;
      try {
        while (off < buf.length) {
          if (left === 0) {
            const h = frameHeader(buf, off);
            if (!h) {
              pending = Buffer.from(buf.subarray(off));
              break;
            }
            out.push(buf.subarray(off, off + h.size));
            off += h.size;
            left = h.payload;
            continue;
          }
          const n = Math.min(left, buf.length - off);
          out.push(m.push(buf.subarray(off, off + n)));
          left -= n;
          off += n;
          if (left === 0) out.push(m.end());
        }
      } catch (e) {
        cb(e as Error);
        return;
      }
      const bytes = Buffer.concat(out);
      if (bytes.length) this.push(bytes);
      cb();
    },
  });
}
