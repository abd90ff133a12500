// jpeg-js's decoder module alone: the package index also pulls in its encoder (8 KB minified in
// the Worker bundle), which the servers never use.
declare module "jpeg-js/lib/decoder.js" {
  import type { decode } from "jpeg-js";
  const decodeJpeg: typeof decode;
  export default decodeJpeg;
}
