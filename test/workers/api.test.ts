/**
 * The Worker's self-description: `/openapi.json` documents exactly the routes the app serves,
 * and `/` serves the demo page with a CSP that admits its inline code and nothing else.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { documentedRoutes } from "../../workers/src/schemas/openapi.js";
import { app } from "../../workers/src/app.js";

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document of exactly the routes the Worker serves", async () => {
    const res = await SELF.fetch("http://edge/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; servers: { url: string }[]; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "http://edge" }]);
    const served = app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`);
    const documented = documentedRoutes(doc).map(([m, p]) => `${m} ${p}`);
    expect([...new Set(served)].sort()).toEqual([...new Set(documented)].sort());
  });
});

describe("GET /", () => {
  it("serves the demo page with a CSP allowing only its own inline script and style and this origin", async () => {
    const res = await SELF.fetch("http://edge/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    const scripts = [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(scripts[0]![1]!)));
    expect(csp).toContain(`'sha256-${btoa(String.fromCharCode(...digest))}'`);
    // no external script, style or font: everything is served by the Worker
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
  });
});
