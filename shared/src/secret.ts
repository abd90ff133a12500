/**
 * How strong the shared HMAC secret (FOGLINE_HMAC_SECRET) must be. Both halves check it at start:
 * the cloud refuses to start, the edge refuses to sign with it and reports itself not ready.
 *
 * The rule: at least 32 random bytes, written as
 *   - 64 or more hex characters (`openssl rand -hex 32`), or
 *   - 43 or more characters of anything else, e.g. base64 (`openssl rand -base64 32`, 44 characters);
 * and not obviously made by hand: no placeholder words (the example file's
 * `replace-me-with-64-hex-characters`, "changeme", ...), at least 10 distinct characters, and not
 * one short piece repeated ("abab...", "0123456789abcdef" four times). A string of random bytes
 * passes these checks with overwhelming probability; they only catch the obvious mistakes, they do
 * not measure entropy.
 */

/** Hex characters needed: 32 bytes. */
export const MIN_SECRET_HEX_CHARS = 64;
/** Other characters needed: 32 bytes in base64 without padding. */
export const MIN_SECRET_CHARS = 43;
const MIN_DISTINCT = 10;

/** How to make a good one; every refusal message ends with it. */
export const SECRET_HOWTO = "make one with `openssl rand -hex 32` or `node -e \"console.log(require('node:crypto').randomBytes(32).toString('hex'))\"`";

const PLACEHOLDER = /replace[-_ ]?me|change[-_ ]?me|changeit|placeholder|example|your[-_ ]?secret|secret[-_ ]?here|insert[-_ ]?here|^x+$/i;

export type SecretFault = "missing" | "placeholder" | "short" | "repetitive";

export interface SecretCheck {
  ok: boolean;
  fault?: SecretFault;
  /** what is wrong, without the secret's value, ending with how to make a good one */
  message?: string;
}

/** The shortest period `p` (< length / 2) such that the string is `s[0:p]` repeated, or 0. */
function period(s: string): number {
  for (let p = 1; p <= s.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < s.length; i++) {
      if (s[i] !== s[i - p]) {
        repeats = false;
        break;
      }
    }
    if (repeats) return p;
  }
  return 0;
}

export function checkSecret(secret: string | undefined, name = "FOGLINE_HMAC_SECRET"): SecretCheck {
  const s = (secret ?? "").trim();
  const fail = (fault: SecretFault, why: string): SecretCheck => ({ ok: false, fault, message: `${name} ${why}; ${SECRET_HOWTO}` });
  if (s === "") return fail("missing", "is not set");
  if (PLACEHOLDER.test(s)) return fail("placeholder", "is a placeholder (the example value or a word like it), not a secret");
  const hex = /^[0-9a-fA-F]+$/.test(s);
  if (hex && s.length < MIN_SECRET_HEX_CHARS) {
    return fail("short", `has ${s.length} hex characters; it needs at least ${MIN_SECRET_HEX_CHARS} (32 random bytes)`);
  }
  if (!hex && s.length < MIN_SECRET_CHARS) {
    return fail("short", `has ${s.length} characters; it needs at least ${MIN_SECRET_CHARS} random characters or ${MIN_SECRET_HEX_CHARS} hex characters (32 random bytes)`);
  }
  if (new Set(s).size < MIN_DISTINCT || period(s) > 0) {
    return fail("repetitive", "is too regular to be random (few distinct characters, or one piece repeated)");
  }
  return { ok: true };
}
