/**
 * The initializers of a serialized ONNX model (ModelProto.graph.initializer), read straight from
 * the protobuf bytes: name, element type and raw_data. The k-bit engine file
 * (workers/src/engine/format/kbit.ts) refers to edge.onnx's tensors by name instead of holding a second
 * copy of them, so the Worker bundles every weight once (issue 19).
 * Only what the exporter (training/onnx_graph.py, numpy_helper.from_array) writes is accepted:
 * tensors as raw_data, little-endian; a referenced tensor stored any other way is refused.
 */

/** TensorProto.DataType codes of the element types the engine file names. */
export const ONNX_DTYPE = { f32: 1, u8: 2, i8: 3, i32: 6, u32: 12 } as const;

export interface OnnxInitializer {
  dataType: number;
  /** a view of the model's bytes: raw_data, little-endian (undefined: not stored as raw_data) */
  raw?: Uint8Array;
}

class Reader {
  at: number;
  constructor(readonly b: Uint8Array, start: number, readonly end: number) {
    this.at = start;
  }
  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.end) throw new Error("onnx: truncated varint");
      const byte = this.b[this.at++]!;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error("onnx: varint too long");
    }
  }
  /** the next field: its number, wire type and, for length-delimited ones, [start, end) */
  field(): { no: number; wire: number; start: number; end: number; value: number } {
    const tag = this.varint();
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    let start = this.at;
    let value = 0;
    if (wire === 0) value = this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 5) this.at += 4;
    else if (wire === 2) {
      const n = this.varint();
      start = this.at;
      this.at += n;
    } else throw new Error(`onnx: wire type ${wire}`);
    if (this.at > this.end) throw new Error("onnx: field beyond its message");
    return { no, wire, start, end: this.at, value };
  }
}

/** name -> initializer, for every ModelProto.graph (field 7) initializer (GraphProto field 5). */
export function onnxInitializers(bytes: Uint8Array): Map<string, OnnxInitializer> {
  const out = new Map<string, OnnxInitializer>();
  const model = new Reader(bytes, 0, bytes.length);
  const utf8 = new TextDecoder();
  while (model.at < model.end) {
    const g = model.field();
    if (g.no !== 7 || g.wire !== 2) continue;
    const graph = new Reader(bytes, g.start, g.end);
    while (graph.at < graph.end) {
      const t = graph.field();
      if (t.no !== 5 || t.wire !== 2) continue;
      const tensor = new Reader(bytes, t.start, t.end);
      let name = "";
      let dataType = 0;
      let raw: Uint8Array | undefined;
      while (tensor.at < tensor.end) {
        const f = tensor.field();
        if (f.no === 8 && f.wire === 2) name = utf8.decode(bytes.subarray(f.start, f.end));
        else if (f.no === 2 && f.wire === 0) dataType = f.value;
        else if (f.no === 9 && f.wire === 2) raw = bytes.subarray(f.start, f.end);
      }
      out.set(name, raw ? { dataType, raw } : { dataType });
    }
  }
  return out;
}
