/**
 * The models this Worker serves: whatever scripts/gen-model-registry.ts found under models/
 * at build time (a static import list, since workerd has no filesystem). To add a model, put
 * models/<name>/{manifest.json,edge.onnx,cloud.onnx} in place and rebuild; nothing here names one.
 */
import { ApiError } from "@fogline/shared/errors";
import { parseManifest, type Manifest } from "@fogline/shared/schemas/manifest";
import { bundledModels } from "./registry.generated.js";

export interface EdgeModel {
  manifest: Manifest;
  edgeOnnx: ArrayBuffer;
  /** the packed engine file (edge.packed.bin) when the manifest lists one; checked when first used */
  engine?: ArrayBuffer;
}

let models: Map<string, EdgeModel> | undefined;

/** Validated on first use rather than at import, so a bad manifest is a clear 500, not a dead isolate. */
export function allModels(): Map<string, EdgeModel> {
  if (!models) {
    const m = new Map<string, EdgeModel>();
    for (const b of bundledModels) {
      const manifest = parseManifest(b.manifest, `models/${b.folder}/manifest.json`);
      m.set(manifest.name, { manifest, edgeOnnx: b.edgeOnnx, ...(b.engine && { engine: b.engine }) });
    }
    models = m;
  }
  return models;
}

export function getModel(name: string): EdgeModel {
  const model = allModels().get(name);
  if (!model) {
    const known = [...allModels().keys()].join(", ") || "none";
    throw new ApiError("model_not_found", `unknown model "${name}" (served: ${known})`);
  }
  return model;
}
