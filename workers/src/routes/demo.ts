/**
 * The demo page at `/`: one HTML file with its style and script inline, bundled into the Worker
 * as a text module (wrangler's default rule for `*.html`), so nothing comes from a CDN. The
 * Content-Security-Policy allows exactly that inline style and script (by hash) and fetches to
 * this origin, and nothing else.
 */
import { Hono } from "hono";
import page from "../demo/index.html";
import type { AppEnv } from "../env.js";

export const demo = new Hono<AppEnv>();

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
}

/** Hashes of every inline <tag>…</tag> body, as CSP source expressions. */
async function inlineHashes(tag: "script" | "style"): Promise<string> {
  const bodies = [...page.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
  return (await Promise.all(bodies.map(sha256))).join(" ");
}

let csp: Promise<string> | undefined;

export function demoCsp(): Promise<string> {
  csp ??= Promise.all([inlineHashes("script"), inlineHashes("style")]).then(([scripts, styles]) =>
    [
      "default-src 'none'",
      `script-src ${scripts}`,
      `style-src ${styles}`,
      "img-src 'self' blob: data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
  return csp;
}

demo.get("/", async (c) => {
  c.header("content-security-policy", await demoCsp());
  c.header("x-content-type-options", "nosniff");
  c.header("cache-control", "no-cache");
  return c.html(page);
});
