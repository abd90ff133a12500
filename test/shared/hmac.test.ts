import { describe, expect, it } from "vitest";
import { sign, verify } from "../../shared/src/hmac.js";

const SECRET = "s".repeat(64);
const FP = "cd".repeat(32);
const body = Uint8Array.from([1, 2, 3, 4]);
const now = 1_800_000_000;

describe("HMAC signatures of edge->cloud calls", () => {
  it("verifies what it signed", async () => {
    const sig = await sign(SECRET, FP, String(now), body);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    expect(await verify(SECRET, FP, String(now), sig, body, now)).toEqual({ ok: true });
  });

  it("rejects a changed body, fingerprint, timestamp or key", async () => {
    const sig = await sign(SECRET, FP, String(now), body);
    expect(await verify(SECRET, FP, String(now), sig, Uint8Array.from([1, 2, 3, 5]), now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, "ef".repeat(32), String(now), sig, body, now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, FP, String(now + 1), sig, body, now)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify("t".repeat(64), FP, String(now), sig, body, now)).toEqual({ ok: false, reason: "invalid" });
  });

  it("rejects stale and future timestamps outside the window", async () => {
    const old = String(now - 61);
    expect(await verify(SECRET, FP, old, await sign(SECRET, FP, old, body), body, now)).toEqual({ ok: false, reason: "stale" });
    const future = String(now + 61);
    expect(await verify(SECRET, FP, future, await sign(SECRET, FP, future, body), body, now)).toEqual({ ok: false, reason: "stale" });
  });

  it("rejects missing and malformed headers", async () => {
    expect(await verify(SECRET, FP, null, "00", body, now)).toEqual({ ok: false, reason: "missing" });
    expect(await verify(SECRET, FP, String(now), "zz", body, now)).toEqual({ ok: false, reason: "malformed" });
    expect(await verify(SECRET, FP, "12x", "0".repeat(64), body, now)).toEqual({ ok: false, reason: "malformed" });
  });
});
