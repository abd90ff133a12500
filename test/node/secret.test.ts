/**
 * The strength rule of FOGLINE_HMAC_SECRET (shared/src/secret.ts), which both halves apply: the
 * cloud at start (test/node/cloud-server.test.ts starts it with bad ones), the edge for readiness
 * and signing (test/workers/edge.test.ts).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSecret } from "@fogline/shared/secret";
import { newSecret } from "../../scripts/lib/stack.js";

const ROOT = resolve(import.meta.dirname, "../..");

describe("checkSecret", () => {
  it("accepts 32 random bytes as hex or base64, and what `npm start` generates", () => {
    for (let i = 0; i < 200; i++) {
      expect(checkSecret(randomBytes(32).toString("hex"))).toEqual({ ok: true });
      expect(checkSecret(randomBytes(32).toString("base64"))).toEqual({ ok: true });
      expect(checkSecret(randomBytes(32).toString("base64url"))).toEqual({ ok: true });
      expect(checkSecret(randomBytes(48).toString("hex").toUpperCase())).toEqual({ ok: true });
      // what `npm start` writes to .dev.vars and the bench uses (scripts/lib/stack.ts)
      expect(checkSecret(newSecret())).toEqual({ ok: true });
    }
  });

  it.each<[string, string | undefined, string]>([
    ["unset", undefined, "missing"],
    ["blank", "   ", "missing"],
    ["the .dev.vars.example value", /^FOGLINE_HMAC_SECRET=(.*)$/m.exec(readFileSync(join(ROOT, ".dev.vars.example"), "utf8"))![1]!, "placeholder"],
    ["a placeholder padded to length", "changeme-changeme-changeme-changeme-changeme-changeme", "placeholder"],
    ["63 hex characters", randomBytes(32).toString("hex").slice(1), "short"],
    ["32 hex characters (16 bytes)", randomBytes(16).toString("hex"), "short"],
    ["42 base64 characters", randomBytes(32).toString("base64").slice(0, 42), "short"],
    ["one character repeated", "a".repeat(64), "repetitive"],
    ["a short piece repeated", "0123456789abcdef".repeat(4), "repetitive"],
    ["a longer piece repeated", "k3J9x!Qm2Lp7Zr".repeat(4), "repetitive"],
    ["few distinct characters", "01".repeat(20) + "0110100110010110" + "10".repeat(10), "repetitive"],
  ])("refuses %s", (_, secret, fault) => {
    const r = checkSecret(secret);
    expect(r.ok).toBe(false);
    expect(r.fault).toBe(fault);
    expect(r.message).toMatch(/^FOGLINE_HMAC_SECRET /);
    expect(r.message).toMatch(/openssl rand -hex 32/);
    if (secret?.trim()) expect(r.message).not.toContain(secret.trim());
  });
});
