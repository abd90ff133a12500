/**
 * The three workspaces' import graph, read from the source (issue 18): `shared/` sits below both
 * halves and imports neither, every module in it is used by both the Worker and the cloud (what
 * only one half uses lives in that half), and neither half imports the other's source.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const SHARED = "@fogline/shared/";

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => join(dir, f));
}

/** The repository paths a file imports (relative specifiers and @fogline/shared/*; packages skipped). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
    const spec = m[1]!;
    if (spec.startsWith(SHARED)) {
      const rest = spec.slice(SHARED.length);
      out.push(rest.endsWith(".json") ? `shared/${rest}` : `shared/src/${rest}.ts`);
    } else if (spec.startsWith(".")) {
      out.push(normalize(relative(ROOT, resolve(ROOT, dirname(file), spec))).replace(/\.js$/, ".ts"));
    }
  }
  return out;
}

function reached(roots: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f) || !f.endsWith(".ts")) continue;
    seen.add(f);
    todo.push(...importsOf(f));
  }
  return seen;
}

describe("workspace import graph", () => {
  const shared = sources("shared/src");
  const workers = sources("workers/src");
  const cloud = sources("cloud/src");

  it("has shared/ below both halves, importing neither", () => {
    expect(shared.length).toBeGreaterThan(10);
    const upward = shared.flatMap((f) => importsOf(f).filter((i) => !i.startsWith("shared/")).map((i) => `${f} -> ${i}`));
    expect(upward).toEqual([]);
  });

  it("keeps in shared/ only what both halves use", () => {
    const byWorker = reached(workers);
    const byCloud = reached(cloud);
    const oneHalf = shared.filter((f) => !(byWorker.has(f) && byCloud.has(f)));
    expect(oneHalf).toEqual([]);
  });

  it("has neither half import the other's source", () => {
    const cross = [
      ...workers.flatMap((f) => importsOf(f).filter((i) => i.startsWith("cloud/")).map((i) => `${f} -> ${i}`)),
      ...cloud.flatMap((f) => importsOf(f).filter((i) => i.startsWith("workers/")).map((i) => `${f} -> ${i}`)),
    ];
    expect(cross).toEqual([]);
  });

  it("reaches shared/ through the package name, not a path into it", () => {
    const byPath = [...workers, ...cloud].filter((f) => /from\s+"(\.\.\/)+shared\//.test(readFileSync(join(ROOT, f), "utf8")));
    expect(byPath).toEqual([]);
  });
});
