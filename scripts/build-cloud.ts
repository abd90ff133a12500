// Bundles the cloud half (cloud/src/server.ts and the shared/ code it uses) into one ESM file,
// build/cloud/server.mjs, that runs on plain Node >= 20 with only onnxruntime-node installed
// beside it (native, so kept external). cloud/Dockerfile and docs/deploy.md use it.
//   node --import tsx scripts/build-cloud.ts [outfile]
import { build } from "esbuild";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const outfile = resolve(process.argv[2] ?? join(root, "build/cloud/server.mjs"));

const result = await build({
  entryPoints: [join(root, "cloud/src/server.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  external: ["onnxruntime-node"],
  // bundled CommonJS dependencies may call require(); give the ESM bundle one
  banner: { js: 'import { createRequire as __foglineRequire } from "node:module"; const require = __foglineRequire(import.meta.url);' },
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
console.log(`build-cloud: ${outfile} (${(bytes / 1024).toFixed(0)} KiB); run it with: node ${outfile}`);
