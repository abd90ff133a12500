// Module types of the wrangler rules in wrangler.toml.
declare module "*.wasm" {
  const module: WebAssembly.Module; // CompiledWasm (wrangler default rule)
  export default module;
}
declare module "*.onnx" {
  const bytes: ArrayBuffer; // [[rules]] type = "Data"
  export default bytes;
}
declare module "*.html" {
  const text: string; // Text (wrangler default rule)
  export default text;
}
declare module "*.bin" {
  const bytes: ArrayBuffer; // [[rules]] type = "Data": packed engine files
  export default bytes;
}
