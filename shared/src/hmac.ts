/**
 * HMAC-SHA256 signatures of edge->cloud calls (Web Crypto, so both workerd and Node run it).
 *
 * The signed message binds the body to the model fingerprint, a timestamp and a nonce:
 *   "fogline-tail-v2\n" + fingerprint + "\n" + timestamp + "\n" + nonce + "\n" + body bytes
 * The cloud recomputes it and compares in constant time, rejects timestamps outside a window
 * (stale or from the future), and remembers the signatures it accepted within that window
 * (replay.ts), so a captured call can be neither replayed nor retargeted at another model
 * version. The random nonce makes two honest calls with the same activation in the same second
 * sign differently, so only a real replay repeats a signature.
 */
import { bytesToHex, hexToBytes } from "./hex.js";

const PREFIX = new TextEncoder().encode("fogline-tail-v2\n");
export const DEFAULT_MAX_SKEW_S = 60;
const NONCE = /^[0-9a-f]{32}$/;

const keyCache = new Map<string, Promise<CryptoKey>>();

function importKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

/** 128 random bits, hex. */
export function newNonce(): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
}

export interface SignedFields {
  fingerprint: string;
  /** Unix seconds, decimal */
  timestamp: string;
  /** 32 lowercase hex characters (newNonce) */
  nonce: string;
}

function message({ fingerprint, timestamp, nonce }: SignedFields, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(`${fingerprint}\n${timestamp}\n${nonce}\n`);
  const out = new Uint8Array(PREFIX.length + head.length + body.length);
  out.set(PREFIX, 0);
  out.set(head, PREFIX.length);
  out.set(body, PREFIX.length + head.length);
  return out;
}

export async function sign(secret: string, fields: SignedFields, body: Uint8Array): Promise<string> {
  const key = await importKey(secret);
  const mac = await crypto.subtle.sign("HMAC", key, message(fields, body));
  return bytesToHex(new Uint8Array(mac));
}

export type VerifyFailure = "missing" | "malformed" | "stale" | "invalid";
export type VerifyResult = { ok: true } | { ok: false; reason: VerifyFailure };

export interface SignatureHeaders {
  fingerprint: string | null | undefined;
  timestamp: string | null | undefined;
  nonce: string | null | undefined;
  signature: string | null | undefined;
}

/**
 * What can be checked before the body is read: every header present, each in its exact format,
 * and the timestamp inside the window. The cloud calls this first, so an unsigned or stale call
 * is refused without reading (or buffering) a byte of its body.
 */
export function checkHeaders(
  h: SignatureHeaders,
  nowS: number = Math.floor(Date.now() / 1000),
  maxSkewS: number = DEFAULT_MAX_SKEW_S,
): VerifyResult {
  const { fingerprint, timestamp, nonce, signature } = h;
  if (!fingerprint || !timestamp || !nonce || !signature) return { ok: false, reason: "missing" };
  const hex64 = /^[0-9a-f]{64}$/;
  if (!hex64.test(fingerprint) || !/^\d{1,12}$/.test(timestamp) || !NONCE.test(nonce) || !hex64.test(signature)) {
    return { ok: false, reason: "malformed" };
  }
  if (Math.abs(nowS - Number(timestamp)) > maxSkewS) return { ok: false, reason: "stale" };
  return { ok: true };
}

/** checkHeaders, then the MAC over the body. */
export async function verify(
  secret: string,
  h: SignatureHeaders,
  body: Uint8Array,
  nowS: number = Math.floor(Date.now() / 1000),
  maxSkewS: number = DEFAULT_MAX_SKEW_S,
): Promise<VerifyResult> {
  const pre = checkHeaders(h, nowS, maxSkewS);
  if (!pre.ok) return pre;
  const { fingerprint, timestamp, nonce, signature } = h as SignedFields & { signature: string };
  const key = await importKey(secret);
  // crypto.subtle.verify compares in constant time
  const good = await crypto.subtle.verify("HMAC", key, hexToBytes(signature), message({ fingerprint, timestamp, nonce }, body));
  return good ? { ok: true } : { ok: false, reason: "invalid" };
}
