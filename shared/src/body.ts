/**
 * A request body read as a stream under a byte cap, so a lying or missing Content-Length cannot
 * make either half buffer more than it allows (the edge's uploads, workers/src/image/upload.ts;
 * the cloud's activation frames, cloud/src/routes/tail.ts).
 */
import { ApiError } from "./errors.js";

/**
 * The body, at most `maxBytes` of it (413 `payload_too_large` past that). `inspect` sees each chunk
 * as it arrives and may throw (an ApiError) to refuse the body before the rest is read, as the
 * OIP JSON budget does (workers/src/oip/protocol.ts `JsonBudget`).
 */
export async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  inspect?: (chunk: Uint8Array) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch (e) {
      // the client went away mid-body, or the stream broke: the client's problem, not a 500
      throw new ApiError("body_incomplete", `the request body could not be read to its end: ${(e as Error)?.message ?? e}`);
    }
    const { done, value } = step;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ApiError("payload_too_large", `the body is larger than ${maxBytes} bytes`);
    }
    if (inspect) {
      try {
        inspect(value);
      } catch (e) {
        await reader.cancel().catch(() => {});
        throw e;
      }
    }
    chunks.push(value);
  }
  if (chunks.length === 1 && chunks[0]!.buffer instanceof ArrayBuffer) return chunks[0] as Uint8Array<ArrayBuffer>;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
