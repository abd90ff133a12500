/**
 * The Worker bundle `wrangler deploy` uploads (`--dry-run`): our own JavaScript stays small. It
 * grew 64 KiB gzip once from zod's ~40 locales, pulled in whole by `import { z } from "zod"`
 * (the namespace object defeats tree shaking); `import * as z from "zod"` keeps only English.
 * docs/performance.md has the full per-file table (`npm run bench`).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const wranglerJs = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
const out = mkdtempSync(join(tmpdir(), "fogline-bundle-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Our code's gzip budget: 110 KiB measured (zod, hono, the decoders, ORT's JS glue, ours). */
const OWN_JS_GZIP_BUDGET = 128 * 1024;

describe("the Worker bundle (wrangler deploy --dry-run)", () => {
  it("keeps its own JavaScript within budget and zod's locales out", () => {
    const r = spawnSync(process.execPath, [wranglerJs, "deploy", "--dry-run", "--outdir", out], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const js = readFileSync(join(out, "index.js"));
    expect(js.toString("utf8")).not.toContain("Eingabe"); // zod/v4/locales/de, as a witness for all of them
    expect(gzipSync(js, { level: 9 }).byteLength).toBeLessThan(OWN_JS_GZIP_BUDGET);
  }, 120_000);
});
