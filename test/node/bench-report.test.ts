/**
 * The bench's verdicts on issue 7's goals (scripts/bench/report.mjs), from crafted results: each
 * limit is judged on the right side of its boundary, per engine, and the doc section is rewritten
 * in place and nowhere else.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { goals, writeDoc } from "../../scripts/bench/report.js";

const trip = (p50Ms: number, p99OverP50: number) => ({ p50Ms, p90Ms: p50Ms, p99Ms: p50Ms * p99OverP50, p99OverP50, requests: 200, answeredAt: "edge" });
const kibOfKb = (kb: number) => (kb * 1000) / 1024;

function results(packed: boolean) {
  return {
    command: "npm run bench",
    started: "2026-11-28T15:00:00.000Z",
    machine: { cpu: "Test CPU", cores: 2, memGiB: 8, platform: "linux", node: "v20", loadavgBefore: [0.1], loadavgAfter: [0.2] },
    model: { name: "cifar10", version: "v1" },
    edgeInWorkerd: { perInference: { cifar10: { medianMs: 5.6, p90Ms: 6 }, ...(packed ? { "cifar10 packed": { medianMs: 0.9, p90Ms: 1 } } : {}) }, pairedRatios: {} },
    nodeOrt: { timings: {} },
    roundTrip: {
      "edge-answered (exit=edge)": trip(12, 1.99),
      "cloud-answered (exit=cloud)": trip(20.01, 1.5),
      ...(packed ? { "edge-answered, packed engine": trip(6, 2.0), "cloud-answered, packed engine": trip(13, 1.7) } : {}),
      "no inference (GET /__bench/ping on the Worker)": trip(3, 2.9),
    },
    coldStart: { ort: { medianMs: 401, samplesMs: [401], laterAnswersMs: [] }, ...(packed ? { packed: { medianMs: 46, samplesMs: [46], laterAnswersMs: [] } } : {}) },
    laterSession: { all: { medianMs: 15 }, ...(packed ? { packed: { medianMs: 3 } } : {}) },
    wire: { precisions: {}, accuracy: { model: "cifar10", version: "v1", images: 5000, int8: { hybridCostPoints: 0.1, finalCostPoints: 0 } } },
    cost: { usdPerMillion: {} },
    bundle: { ortWasm: { rawKiB: 1, gzipKiB: 1 }, ours: { rawKiB: 1, gzipKiB: kibOfKb(300.1) }, perModel: { cifar10: { rawKiB: 1, gzipKiB: kibOfKb(300) } }, files: [] },
  };
}

const verdict = (rows: string[][], goal: string) => {
  const row = rows.find((r) => r[0]!.startsWith(goal));
  expect(row, goal).toBeDefined();
  return row![2]!;
};

describe("bench goals", () => {
  it("judges every limit at its boundary, per engine", () => {
    const rows = goals(results(true)) as string[][];
    expect(verdict(rows, "edge part in workerd")).toBe("packed: yes (and <= 1 ms); onnxruntime: **no**");
    expect(verdict(rows, "round trip p50 <= 12 ms, edge-answered")).toBe("packed: yes; onnxruntime: yes");
    expect(verdict(rows, "round trip p50 <= 20 ms, cloud-answered")).toBe("packed: yes; onnxruntime: **no**");
    expect(verdict(rows, "p99 under 2x p50")).toBe("edge packed: **no**; cloud packed: yes; edge onnxruntime: yes; cloud onnxruntime: yes");
    expect(verdict(rows, "int8 on the wire")).toBe("yes");
    expect(verdict(rows, "cold start <= 400 ms")).toBe("packed: yes; onnxruntime: **no**");
    expect(verdict(rows, "later sessions <= 15 ms")).toBe("packed: yes; onnxruntime (opt=all, served): yes");
    expect(verdict(rows, "bundle growth")).toBe("every shipped model: **no**; cifar10 alone: yes");
  });

  it("judges onnxruntime alone when the model ships no packed engine", () => {
    const rows = goals(results(false)) as string[][];
    expect(verdict(rows, "edge part in workerd")).toBe("onnxruntime: **no**");
    expect(verdict(rows, "cold start <= 400 ms")).toBe("onnxruntime: **no**");
    expect(rows.flat().join(" ")).not.toMatch(/packed/);
  });

  it("judges issue 19's goals for another shipped model (cifar100) per engine, after issue 7's", () => {
    const r = results(true);
    const withCifar100 = {
      ...r,
      edgeInWorkerd: { ...r.edgeInWorkerd, perInference: { ...r.edgeInWorkerd.perInference, cifar100: { medianMs: 5.2, p90Ms: 6 }, "cifar100 packed": { medianMs: 1.0, p90Ms: 1.2 } } },
      coldStart: { ...r.coldStart, "cifar100 ort": { medianMs: 600, samplesMs: [600], laterAnswersMs: [] }, "cifar100 packed": { medianMs: 100.01, samplesMs: [100.01], laterAnswersMs: [] } },
      roundTrip: { ...r.roundTrip, "cifar100 edge-answered (exit=edge)": trip(12, 1.5), "cifar100 edge-answered, packed engine": trip(8, 1.5) },
    };
    const rows = goals(withCifar100) as string[][];
    expect(verdict(rows, "cifar100: edge part in workerd <= 1.5 ms")).toBe("packed: yes (and <= 1 ms); onnxruntime: **no**");
    expect(verdict(rows, "cifar100: first answer of a fresh isolate <= 100 ms")).toBe("packed: **no**; onnxruntime: **no**");
    expect(verdict(rows, "cifar100: round trip p50 <= 8 ms")).toBe("packed: yes; onnxruntime: **no**");
    // issue 7's rows stay cifar10's
    expect(verdict(rows, "cold start <= 400 ms")).toBe("packed: yes; onnxruntime: **no**");
    expect(rows.findIndex((x) => x[0]!.startsWith("cifar100"))).toBeGreaterThan(rows.findIndex((x) => x[0]!.startsWith("bundle growth")));
  });
});

describe("bench --doc", () => {
  it("rewrites only its own section of the doc", () => {
    const file = join(mkdtempSync(join(tmpdir(), "bench-doc-")), "perf.md");
    const begin = "<!-- bench:begin (written by npm run bench -- --doc; do not edit by hand) -->";
    writeFileSync(file, `before\n${begin}\nstale figures\n<!-- bench:end -->\nafter\n`);
    writeDoc(file, results(true));
    const text = readFileSync(file, "utf8");
    expect(text.startsWith(`before\n${begin}\nMeasured 2026-11-28 15:00 UTC with`)).toBe(true);
    expect(text.endsWith("<!-- bench:end -->\nafter\n")).toBe(true);
    expect(text).not.toContain("stale figures");
    expect(text).toContain("| cold start <= 400 ms (first answer of a fresh isolate) | packed 46.00 ms; onnxruntime 401.00 ms |");
    writeFileSync(file, "no section here\n");
    expect(() => writeDoc(file, results(true))).toThrow(/no <!-- bench:begin/);
  });
});
