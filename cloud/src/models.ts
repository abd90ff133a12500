import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GraphRunner } from "@fogline/shared/runner";
import { parseManifest, type Manifest } from "@fogline/shared/schemas/manifest";
import { OrtNodeRunner } from "./infer/session.js";

export interface CloudModel {
  manifest: Manifest;
  tail: GraphRunner;
}

/**
 * Loads every models/<name>/ that has a manifest: checks cloud.onnx against the manifest's
 * sha256 (a half-copied export fails here, not on a request) and creates its session.
 */
export async function loadModels(dir: string, threads = 1): Promise<Map<string, CloudModel>> {
  if (!existsSync(dir)) throw new Error(`models folder ${dir} does not exist`);
  const models = new Map<string, CloudModel>();
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "manifest.json")))
    .map((d) => d.name)
    .sort();
  for (const folder of folders) {
    const where = join(dir, folder, "manifest.json");
    const manifest = parseManifest(JSON.parse(readFileSync(where, "utf8")), where);
    const onnx = readFileSync(join(dir, folder, manifest.files.cloud.path));
    const sha = createHash("sha256").update(onnx).digest("hex");
    if (sha !== manifest.files.cloud.sha256) throw new Error(`${folder}/${manifest.files.cloud.path}: sha256 ${sha} differs from the manifest`);
    models.set(manifest.name, { manifest, tail: await OrtNodeRunner.create(onnx, threads) });
  }
  if (models.size === 0) throw new Error(`no models (folders with manifest.json) under ${dir}`);
  return models;
}
