/**
 * scripts/gen-model-registry.ts bundles a model's packed engine file only when it matches the
 * manifest's sha256 (files.engine), and refuses to build otherwise: a stale or corrupt engine file
 * never reaches the Worker. Only refusals run here: they exit before writing anything, so the
 * registry the other tests use is untouched.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { manifests, modelsDir } from "../models.generated.js";

const ROOT = resolve(import.meta.dirname, "../..");
const REGISTRY = join(ROOT, "workers/src/models/registry.generated.ts");
/** tsx's loader as a file URL, for `node --import` from a folder without node_modules */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
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
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/gen-model-registry.ts"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, FOGLINE_MODELS_DIR: models } });
  expect(statSync(REGISTRY).mtimeMs).toBe(before);
  return r;
}

const shipsEngine = Boolean((manifests["cifar10"] as { files?: { engine?: unknown } } | undefined)?.files?.engine);

describe.skipIf(!shipsEngine)("scripts/gen-model-registry.ts and the packed engine file", () => {
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

describe("FOGLINE_EDGE_MODELS (which models the Worker bundles)", () => {
  /** The generator run from a scratch root, so the registry the other tests use is untouched. */
  function generate(selection: string) {
    const root = join(work, `select-${selection || "all"}`);
    mkdirSync(join(root, "scripts"), { recursive: true });
    copyFileSync(join(ROOT, "scripts/gen-model-registry.ts"), join(root, "scripts/gen-model-registry.ts"));
    // tsx from this checkout: the scratch root has no node_modules
    const r = spawnSync(process.execPath, ["--import", TSX, join(root, "scripts/gen-model-registry.ts")], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, FOGLINE_MODELS_DIR: modelsDir, FOGLINE_EDGE_MODELS: selection },
    });
    const file = join(root, "workers/src/models/registry.generated.ts");
    return { ...r, registry: r.status === 0 ? readFileSync(file, "utf8") : "" };
  }
  const all = Object.keys(manifests).sort();

  it("bundles every model by default and only the named ones when set", () => {
    const every = generate("");
    expect(every.status, every.stderr).toBe(0);
    expect([...every.registry.matchAll(/folder: "([^"]+)"/g)].map((m) => m[1])).toEqual(all);
    const one = generate(` ${all[0]} `);
    expect(one.status, one.stderr).toBe(0);
    expect([...one.registry.matchAll(/folder: "([^"]+)"/g)].map((m) => m[1])).toEqual([all[0]]);
    for (const other of all.slice(1)) expect(one.registry).not.toContain(`/${other}/`);
  });

  it("refuses a name that is not a model folder", () => {
    const r = generate(`${all[0]},cifar1000`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FOGLINE_EDGE_MODELS names cifar1000, not found under/);
  });
});
