/**
 * HMAC-SHA256 signatures of edge->cloud calls (Web Crypto, so both workerd and Node run it).
 *
 * The signed message binds the body to the model fingerprint and a timestamp:
 *   "fogline-tail-v1\n" + fingerprint + "\n" + timestamp + "\n" + body bytes
 * The cloud recomputes it, compares in constant time and rejects timestamps outside a replay
 * window (stale or from the future), so a captured call cannot be replayed later or retargeted
 * at another model version.
 */
import { bytesToHex, hexToBytes } from "./hex.js";

const PREFIX = new TextEncoder().encode("fogline-tail-v1\n");
export const DEFAULT_MAX_SKEW_S = 60;
/** Shortest secret accepted: 128 bits of hex. `npm start` generates 256. */
export const MIN_SECRET_LENGTH = 32;

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

function message(fingerprint: string, timestamp: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(`${fingerprint}\n${timestamp}\n`);
  const out = new Uint8Array(PREFIX.length + head.length + body.length);
  out.set(PREFIX, 0);
  out.set(head, PREFIX.length);
  out.set(body, PREFIX.length + head.length);
  return out;
}

export async function sign(secret: string, fingerprint: string, timestamp: string, body: Uint8Array): Promise<string> {
  const key = await importKey(secret);
  const mac = await crypto.subtle.sign("HMAC", key, message(fingerprint, timestamp, body));
  return bytesToHex(new Uint8Array(mac));
}

export type VerifyResult = { ok: true } | { ok: false; reason: "missing" | "malformed" | "stale" | "invalid" };

export async function verify(
  secret: string,
  fingerprint: string | null | undefined,
  timestamp: string | null | undefined,
  signature: string | null | undefined,
  body: Uint8Array,
  nowS: number = Math.floor(Date.now() / 1000),
  maxSkewS: number = DEFAULT_MAX_SKEW_S,
): Promise<VerifyResult> {
  if (!fingerprint || !timestamp || !signature) return { ok: false, reason: "missing" };
  if (!/^\d{1,12}$/.test(timestamp) || !/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: "malformed" };
  if (Math.abs(nowS - Number(timestamp)) > maxSkewS) return { ok: false, reason: "stale" };
  const key = await importKey(secret);
  // crypto.subtle.verify compares in constant time
  const good = await crypto.subtle.verify("HMAC", key, hexToBytes(signature), message(fingerprint, timestamp, body));
  return good ? { ok: true } : { ok: false, reason: "invalid" };
}
