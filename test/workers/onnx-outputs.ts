/**
 * Test helper: exposes intermediate tensors of an ONNX model as extra graph outputs, by editing
 * its protobuf bytes (onnxruntime-web returns only graph outputs). Just enough of the protobuf
 * wire format for ModelProto.graph (field 7), GraphProto.node (1) / .output (12) and
 * NodeProto.input (1) / .output (2) / .op_type (4).
 */
interface Field {
  no: number;
  wire: number;
  /** payload of a length-delimited field; the raw varint/fixed bytes otherwise */
  data: Uint8Array;
  /** the whole field, tag included */
  raw: Uint8Array;
}

function readVarint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[at++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, at];
    mul *= 128;
  }
}

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < b.length) {
    const start = at;
    const [tag, next] = readVarint(b, at);
    at = next;
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    let data: Uint8Array;
    if (wire === 0) {
      const [, end] = readVarint(b, at);
      data = b.subarray(at, end);
      at = end;
    } else if (wire === 2) {
      const [len, s] = readVarint(b, at);
      data = b.subarray(s, s + len);
      at = s + len;
    } else if (wire === 5 || wire === 1) {
      const n = wire === 5 ? 4 : 8;
      data = b.subarray(at, at + n);
      at += n;
    } else throw new Error(`protobuf wire type ${wire} not supported`);
    out.push({ no, wire, data, raw: b.subarray(start, at) });
  }
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function lengthDelimited(no: number, payload: Uint8Array): Uint8Array {
  const head = [...varint(no * 8 + 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const text = (b: Uint8Array) => new TextDecoder().decode(b);

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
}

/** The graph's nodes in order. */
export function graphNodes(model: Uint8Array): OnnxNode[] {
  const graph = fields(model).find((f) => f.no === 7)!;
  return fields(graph.data)
    .filter((f) => f.no === 1)
    .map((n) => {
      const fs = fields(n.data);
      return {
        op: text(fs.find((f) => f.no === 4)!.data),
        inputs: fs.filter((f) => f.no === 1).map((f) => text(f.data)),
        outputs: fs.filter((f) => f.no === 2).map((f) => text(f.data)),
      };
    });
}

/** ONNX TensorProto element types used here. */
export const ELEM = { uint8: 2, int32: 6, float: 1 } as const;

/** The model with `outputs` (name -> element type) appended to its graph outputs. */
export function withOutputs(model: Uint8Array, outputs: Record<string, number>): Uint8Array<ArrayBuffer> {
  const top = fields(model);
  const parts = top.map((f) => {
    if (f.no !== 7) return f.raw;
    const extra = Object.entries(outputs).map(([name, elem]) => {
      const tensorType = new Uint8Array([0x08, ...varint(elem)]); // TypeProto.Tensor.elem_type
      const type = lengthDelimited(1, tensorType); // TypeProto.tensor_type
      return lengthDelimited(12, concat([lengthDelimited(1, new TextEncoder().encode(name)), lengthDelimited(2, type)]));
    });
    return lengthDelimited(7, concat([f.data, ...extra]));
  });
  return concat(parts) as Uint8Array<ArrayBuffer>;
}
