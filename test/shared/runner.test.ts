import { describe, expect, it } from "vitest";
import { runEdge, runOrtSession, runTail, type GraphRunner, type Tensor } from "@fogline/shared/runner";

/** What an onnxruntime session hands back: its own tensor objects, typed by a string. */
interface RuntimeTensor {
  type: string;
  data: unknown;
  dims: readonly number[];
}

/** A session that doubles every float32 input and also returns an int64 tensor when asked. */
function doublingSession(withInt64 = false) {
  const seen: Record<string, RuntimeTensor> = {};
  return {
    seen,
    async run(feeds: Record<string, RuntimeTensor>): Promise<Record<string, RuntimeTensor>> {
      Object.assign(seen, feeds);
      const out: Record<string, RuntimeTensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        out[`${name}_x2`] = { type: "float32", data: (t.data as Float32Array).map((v) => 2 * v), dims: t.dims };
      }
      if (withInt64) out.index = { type: "int64", data: new BigInt64Array(1), dims: [1] };
      return out;
    },
  };
}

const toRuntime = (t: Tensor): RuntimeTensor => ({ type: "float32", data: t.data, dims: t.dims });

describe("runOrtSession (the ORT adapter both halves use)", () => {
  it("feeds the runtime's tensors and returns float32 outputs by name", async () => {
    const session = doublingSession();
    const out = await runOrtSession(session, toRuntime, { image: { data: new Float32Array([1, -2, 3]), dims: [1, 3] } });
    expect(session.seen.image?.type).toBe("float32");
    expect(Array.from(out.image_x2?.data ?? [])).toEqual([2, -4, 6]);
    expect(out.image_x2?.dims).toEqual([1, 3]);
  });

  it("refuses a graph with a non-float32 output instead of misreading its bytes", async () => {
    const feeds = { image: { data: new Float32Array(1), dims: [1] } };
    await expect(runOrtSession(doublingSession(true), toRuntime, feeds)).rejects.toThrow(
      "output index is int64, expected float32",
    );
  });
});

describe("runEdge / runTail (the graph contract of docs/contracts.md)", () => {
  const constant = (outputs: Record<string, Tensor>): GraphRunner => ({ run: async () => outputs });
  const t = (n: number): Tensor => ({ data: new Float32Array(n), dims: [1, n] });

  it("picks the named outputs", async () => {
    const exitLogits = t(10);
    const split = t(4);
    const edge = await runEdge(constant({ exit_logits: exitLogits, split }), t(3));
    expect(edge.exitLogits).toBe(exitLogits);
    expect(edge.split).toBe(split);
    expect(await runTail(constant({ logits: exitLogits }), split)).toBe(exitLogits);
  });

  it("names the missing output and what the graph gave instead", async () => {
    await expect(runEdge(constant({ exit_logits: t(10), features: t(4) }), t(3))).rejects.toThrow(
      'model output "split" missing (got exit_logits, features)',
    );
    await expect(runTail(constant({ output: t(10) }), t(4))).rejects.toThrow('model output "logits" missing (got output)');
  });
});
