/**
 * onnxruntime-web inside workerd (docs/runtime.md#onnxruntime-web-inside-workerd). workerd refuses to compile WASM from bytes, so the
 * ORT WASM is imported as a module (wrangler's CompiledWasm rule precompiles `*.wasm`). ORT has
 * no instantiateWasm hook; it forwards `env.wasm.wasmBinary` to its Emscripten glue, which calls
 * `WebAssembly.instantiate(new Uint8Array(wasmBinary), imports)`. We hand it a private marker
 * buffer and wrap WebAssembly.instantiate so that exactly that call gets the precompiled module;
 * every other call passes through unchanged. This depends on ORT's loader, hence the pinned
 * version (package.json) and the test "ORT loads its WASM through the marker" that catches a break.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasmModule from "onnxruntime-web/ort-wasm-simd-threaded.wasm";

const MARKER = new TextEncoder().encode("fogline:ort-wasm-precompiled-module").buffer as ArrayBuffer;
const MARKER_BYTES = new Uint8Array(MARKER.slice(0));

/** How often the wrapper served the precompiled module (tests assert exactly once per isolate). */
export const loaderStats = { intercepted: 0 };

function isMarker(source: unknown): boolean {
  if (!(source instanceof Uint8Array) && !(source instanceof ArrayBuffer)) return false;
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  if (bytes.buffer === MARKER) return true;
  return bytes.length === MARKER_BYTES.length && bytes.every((b, i) => b === MARKER_BYTES[i]);
}

let ready = false;

export function initOrt(): typeof ort {
  if (ready) return ort;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (...args: unknown[]) => Promise<unknown>;
  const wrapped = (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (isMarker(source)) {
      loaderStats.intercepted++;
      return (original(ortWasmModule, imports) as Promise<WebAssembly.Instance>).then((instance) => ({
        instance,
        module: ortWasmModule,
      }));
    }
    return original(source, imports);
  };
  (WebAssembly as { instantiate: unknown }).instantiate = wrapped;
  ort.env.wasm.wasmBinary = MARKER;
  // workerd has no Workers threads for Emscripten pthreads, and no dynamic import for a proxy
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  ready = true;
  return ort;
}

export { ort };
