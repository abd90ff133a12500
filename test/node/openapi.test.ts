/**
 * The OpenAPI document generated from the zod schemas, and the docs/api.md reference rendered from it.
 * (test/workers/api.test.ts checks that it covers exactly the routes the Worker serves.)
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { openApiDocument } from "../../workers/src/schemas/openapi.js";
import { API_DOC, BEGIN, currentSection, END, withApiSection } from "../../scripts/readme-api.js";

const doc = openApiDocument({ version: pkg.version }) as {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>>;
  components: { schemas: Record<string, unknown> };
};

function refs(x: unknown, out: string[] = []): string[] {
  if (Array.isArray(x)) for (const v of x) refs(v, out);
  else if (x && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe("openApiDocument", () => {
  it("is OpenAPI 3.1 whose every $ref resolves to a component schema", () => {
    expect(doc.openapi).toBe("3.1.0");
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(10);
    for (const r of all) {
      expect(r).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[r.split("/").pop()!], r).toBeDefined();
    }
  });

  it("gives every path parameter a declaration and every operation a 200", () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops)) {
        expect(Object.keys(op.responses)).toContain("200");
        const declared = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name).sort();
        expect(declared, path).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());
      }
    }
  });

  it("takes the classify query parameters from the zod schema, defaults included", () => {
    const params = doc.paths["/v1/classify"]!.post!.parameters as unknown as { name: string; schema: { default?: unknown } }[];
    expect(params.map((p) => p.name)).toEqual(["model", "threshold", "exit", "engine"]);
    expect(params.find((p) => p.name === "exit")!.schema.default).toBe("auto");
    expect(params.find((p) => p.name === "engine")!.schema.default).toBe("auto");
  });
});

describe("docs/api.md API reference", () => {
  it("is the current rendering of the document (run `npm run docs:api` when this fails)", () => {
    const page = readFileSync(API_DOC, "utf8");
    expect(page).toContain(BEGIN);
    expect(page).toContain(END);
    expect(withApiSection(page, currentSection())).toBe(page);
  });
});
