/** The packed engine for a parsed engine file: binary (./packed.ts) or k-bit (./kbit.ts), by its format. */
import type { AnyPackedEdge } from "./format/binary.js";
import { KbitRunner } from "./kbit.js";
import { PackedRunner } from "./packed.js";

export type PackedEngine = PackedRunner | KbitRunner;

export function packedEngine(edge: AnyPackedEdge, module?: WebAssembly.Module): PackedEngine {
  return edge.kind === "kbit" ? new KbitRunner(edge, module) : new PackedRunner(edge, module);
}
