import { describe, expect, it } from "vitest";
import { checkHeaders, newNonce, sign, verify, type SignedFields } from "@fogline/shared/hmac";

const SECRET = "s".repeat(64);
const FP = "cd".repeat(32);
const body = Uint8Array.from([1, 2, 3, 4]);
const now = 1_800_000_000;
const NONCE = "ab".repeat(16);
const fields = (over: Partial<SignedFields> = {}): SignedFields => ({ fingerprint: FP, timestamp: String(now), nonce: NONCE, ...over });
const headers = (sig: string, over: Partial<SignedFields> = {}) => ({ ...fields(over), signature: sig });

describe("HMAC signatures of edge->cloud calls", () => {
  it("verifies what it signed", async () => {
    const sig = await sign(SECRET, fields(), body);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    expect(await verify(SECRET, headers(sig), body, now)).toEqual({ ok: true });
  });

  it("rejects a changed body, fingerprint, timestamp, nonce or key", async () => {
    const sig = await sign(SECRET, fields(), body);
    expect(await verify(SECRET, headers(sig), Uint8Array.from([1, 2, 3, 5]), now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, headers(sig, { fingerprint: "ef".repeat(32) }), body, now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, headers(sig, { timestamp: String(now + 1) }), body, now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, headers(sig, { nonce: "cd".repeat(16) }), body, now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify("t".repeat(64), headers(sig), body, now)).toEqual({ ok: false, reason: "invalid" });
  });

  it("signs the same activation differently under two nonces", async () => {
    const a = newNonce();
    const b = newNonce();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a).not.toBe(b);
    expect(await sign(SECRET, fields({ nonce: a }), body)).not.toBe(await sign(SECRET, fields({ nonce: b }), body));
  });

  it("rejects stale and future timestamps outside the window", async () => {
    for (const ts of [String(now - 61), String(now + 61)]) {
      const sig = await sign(SECRET, fields({ timestamp: ts }), body);
      expect(await verify(SECRET, headers(sig, { timestamp: ts }), body, now)).toEqual({ ok: false, reason: "stale" });
    }
    const edge = String(now - 60);
    expect(await verify(SECRET, headers(await sign(SECRET, fields({ timestamp: edge }), body), { timestamp: edge }), body, now)).toEqual({ ok: true });
  });

  it("rejects missing and malformed headers", async () => {
    const sig = "0".repeat(64);
    expect(await verify(SECRET, { ...headers(sig), timestamp: null }, body, now)).toEqual({ ok: false, reason: "missing" });
    expect(await verify(SECRET, { ...headers(sig), nonce: undefined }, body, now)).toEqual({ ok: false, reason: "missing" });
    expect(await verify(SECRET, headers("zz"), body, now)).toEqual({ ok: false, reason: "malformed" });
    expect(await verify(SECRET, headers(sig, { timestamp: "12x" }), body, now)).toEqual({ ok: false, reason: "malformed" });
    expect(await verify(SECRET, headers(sig, { nonce: "short" }), body, now)).toEqual({ ok: false, reason: "malformed" });
    expect(await verify(SECRET, headers(sig, { fingerprint: "not-hex" }), body, now)).toEqual({ ok: false, reason: "malformed" });
  });

  it("checks presence, format and window without the body (checkHeaders), as verify does first", async () => {
    const sig = "0".repeat(64);
    expect(checkHeaders(headers(sig), now)).toEqual({ ok: true }); // well-formed; the MAC needs the body
    expect(checkHeaders({ ...headers(sig), signature: undefined }, now)).toEqual({ ok: false, reason: "missing" });
    expect(checkHeaders(headers("zz"), now)).toEqual({ ok: false, reason: "malformed" });
    expect(checkHeaders(headers(sig, { timestamp: String(now - 61) }), now)).toEqual({ ok: false, reason: "stale" });
    expect(checkHeaders(headers(sig, { timestamp: String(now + 61) }), now)).toEqual({ ok: false, reason: "stale" });
    expect(checkHeaders(headers(sig, { timestamp: String(now - 10) }), now, 5)).toEqual({ ok: false, reason: "stale" });
    expect(await verify(SECRET, headers(sig), body, now)).toEqual({ ok: false, reason: "invalid" });
  });
});
