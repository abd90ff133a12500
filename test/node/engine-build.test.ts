/**
 * The packed engine's kernels (workers/engine/binconv.ts and kconv.ts) are committed as a built
 * .wasm so the Worker builds without a compile step; this checks that the committed bytes are
 * exactly what the pinned AssemblyScript compiler makes of the committed source
 * (`npm run build:engine`).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json";

const ROOT = resolve(import.meta.dirname, "../..");

/** Entries of a WASM binary's import section (id 2), 0 without one. */
function importCount(wasm: Uint8Array): number {
  let at = 8; // magic + version
  const leb = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = wasm[at++]!;
      v |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return v >>> 0;
    }
  };
  while (at < wasm.length) {
    const id = wasm[at++]!;
    const size = leb();
    if (id === 2) return leb();
    at += size;
  }
  return 0;
}

describe("workers/src/engine/binconv.wasm", () => {
  it("is what `npm run build:engine` builds from workers/engine/binconv.ts, byte for byte", () => {
    const script = pkg.scripts["build:engine"];
    const out = mkdtempSync(join(tmpdir(), "fogline-engine-"));
    try {
      const file = join(out, "binconv.wasm");
      const argv = script.replace(/^asc /, "").replace("workers/src/engine/binconv.wasm", file).split(" ");
      expect(argv).toContain("workers/engine/kconv.ts");
      const asc = join(ROOT, "node_modules/assemblyscript/bin/asc.js");
      const r = spawnSync(process.execPath, [asc, ...argv], { cwd: ROOT, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const rebuilt = readFileSync(file);
      const committed = readFileSync(join(ROOT, "workers/src/engine/binconv.wasm"));
      expect(rebuilt.equals(committed), "stale binconv.wasm: run npm run build:engine and commit it").toBe(true);
      // no imports: workerd instantiates it synchronously with {} (workers/src/engine/kernels.ts).
      // Read from the binary: Node 20 cannot compile it (relaxed SIMD needs a flag there; workerd has it)
      expect(importCount(committed)).toBe(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
