/**
 * scripts/gen-model-registry.mjs bundles a model's packed engine file only when it matches the
 * manifest's sha256 (files.engine), and refuses to build otherwise: a stale or corrupt engine file
 * never reaches the Worker. Only refusals run here: they exit before writing anything, so the
 * registry the other tests use is untouched.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { manifests, modelsDir } from "../models.generated.js";

const ROOT = resolve(import.meta.dirname, "../..");
const REGISTRY = join(ROOT, "workers/src/models/registry.generated.ts");
const work = mkdtempSync(join(tmpdir(), "fogline-registry-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the shipped cifar10 folder, modified by `edit`, in a models dir of its own. */
function modelsWith(name: string, edit: (dir: string) => void): string {
  const dir = join(work, name, "cifar10");
  mkdirSync(dir, { recursive: true });
  for (const f of ["manifest.json", "edge.onnx", "cloud.onnx", "edge.packed.bin"]) copyFileSync(join(modelsDir, "cifar10", f), join(dir, f));
  edit(dir);
  return join(work, name);
}

function run(models: string) {
  const before = statSync(REGISTRY).mtimeMs;
  const r = spawnSync(process.execPath, ["scripts/gen-model-registry.mjs"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, FOGLINE_MODELS_DIR: models } });
  expect(statSync(REGISTRY).mtimeMs).toBe(before);
  return r;
}

const shipsEngine = Boolean((manifests["cifar10"] as { files?: { engine?: unknown } } | undefined)?.files?.engine);

describe.skipIf(!shipsEngine)("scripts/gen-model-registry.mjs and the packed engine file", () => {
  it("refuses an engine file whose bytes differ from manifest.files.engine.sha256", () => {
    const models = modelsWith("corrupt", (dir) => {
      const bytes = readFileSync(join(dir, "edge.packed.bin"));
      bytes[bytes.length - 1]! ^= 1;
      writeFileSync(join(dir, "edge.packed.bin"), bytes);
    });
    const r = run(models);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/edge\.packed\.bin: sha256 differs from manifest\.files\.engine\.sha256/);
  });

  it("refuses a manifest that lists a missing engine file", () => {
    const r = run(modelsWith("missing", (dir) => rmSync(join(dir, "edge.packed.bin"))));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/edge\.packed\.bin is missing \(manifest\.files\.engine\)/);
  });
});
