/**
 * The one builder of a signed edge->cloud call (`POST /v1/tail/{model}`): the edge's client
 * (workers/src/cloud/client.ts), the tests, the fuzzers and the bench all send what this makes,
 * so the header set and the signed fields (hmac.ts) are written down once.
 */
import { newNonce, sign } from "@fogline/shared/hmac";
import { TAIL_CONTENT_TYPE, TAIL_HEADERS } from "@fogline/shared/schemas/tail";

/** The cloud's tail route of one model, under a base URL (`""` for `app.request`). */
export function tailUrl(base: string, model: string): string {
  return `${base.replace(/\/+$/, "")}/v1/tail/${encodeURIComponent(model)}`;
}

export interface TailCall {
  secret: string;
  /** the model fingerprint signed and sent in `x-fogline-fingerprint` (the payload's own, unless a test forges one) */
  fingerprint: string;
  /** the encoded activation (wire.ts) */
  body: Uint8Array;
  /** Unix seconds; default now (a test with a fake clock passes its own) */
  timestampS?: number;
  /** default a fresh newNonce(): a retry or a repeat is then never taken for a replay */
  nonce?: string;
  /** passed on as `x-request-id`, so the cloud's log lines carry the edge's id */
  requestId?: string;
}

/** A `fetch`/`app.request` init: method, body and the signed headers. */
export interface SignedTailRequest {
  method: "POST";
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/** Signs `call.body` (hmac.ts: fingerprint, timestamp and nonce bound to the bytes) and returns the request init. */
export async function signedTailRequest(call: TailCall): Promise<SignedTailRequest> {
  const fields = {
    fingerprint: call.fingerprint,
    timestamp: String(call.timestampS ?? Math.floor(Date.now() / 1000)),
    nonce: call.nonce ?? newNonce(),
  };
  const headers: Record<string, string> = {
    "content-type": TAIL_CONTENT_TYPE,
    [TAIL_HEADERS.timestamp]: fields.timestamp,
    [TAIL_HEADERS.nonce]: fields.nonce,
    [TAIL_HEADERS.signature]: await sign(call.secret, fields, call.body),
    [TAIL_HEADERS.fingerprint]: fields.fingerprint,
  };
  if (call.requestId !== undefined) headers[TAIL_HEADERS.requestId] = call.requestId;
  return { method: "POST", body: call.body as Uint8Array<ArrayBuffer>, headers };
}
