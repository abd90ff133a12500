// The bench's report (run by bench.ts under tsx): the table of one run, issue 7's goals (and issue 19's for the
// other shipped models, e.g. the k-bit cifar100 edge) judged against it, and the section of
// docs/performance.md it writes (`npm run bench -- --doc`). Pure functions of the results JSON,
// so test/node/bench-report.test.ts checks the verdicts without running the bench.
import { readFileSync, writeFileSync } from "node:fs";

type Row = string[];
interface Timing { medianMs: number; p25Ms?: number; p90Ms?: number }
interface Trip { p50Ms: number; p90Ms: number; p99Ms: number; p99OverP50: number; answeredAt?: string | null }
interface Size { rawKiB: number; gzipKiB: number }
type Precision = "fp32" | "fp16" | "int8";
interface WireAccuracy { hybridAccuracy?: number; hybridCostPoints: number; finalCostPoints: number }
/** The parts of scripts/bench.ts's results JSON that the report reads. */
export interface BenchResults {
  command: string;
  started: string;
  machine: { cpu?: string; cores: number; memGiB: number; platform: string; node: string; loadavgBefore: number[]; loadavgAfter: number[] };
  model: { name: string; version: string };
  edgeInWorkerd: { perInference: Record<string, Timing>; pairedRatios: Record<string, number | null> };
  nodeOrt: { timings: Record<string, Timing> };
  roundTrip: Record<string, Trip>;
  coldStart: Record<string, { medianMs: number; samplesMs: number[]; laterAnswersMs: { second: number; tenth: number }[] }>;
  laterSession: Record<string, Timing>;
  wire: {
    precisions: Record<string, { bytes: number; encodeMs: number; decodeMs: number }>;
    accuracy?: { model: string; version: string; images: number } & Partial<Record<Precision, WireAccuracy>>;
  };
  cost: { usdPerMillion: Record<string, number> };
  bundle: { wrangler?: Size; ortWasm: Size; ours: Size; perModel?: Record<string, Size>; files: ({ file: string } & Size)[] };
}

export const median = (xs: number[]): number => quantile(xs, 0.5);
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

export function bundleRows(bundle: BenchResults["bundle"]): Row[] {
  return [
    ["bundle (wrangler)", `${fmt(bundle.wrangler?.rawKiB)} KiB`, `gzip ${fmt(bundle.wrangler?.gzipKiB)} KiB`, "wrangler deploy --dry-run"],
    ["bundle: ORT WASM", `${fmt(bundle.ortWasm.rawKiB)} KiB`, `gzip ${fmt(bundle.ortWasm.gzipKiB)} KiB`, "gzip -9 per file"],
    ["bundle: our code + models", `${fmt(bundle.ours.rawKiB)} KiB`, `gzip ${fmt(bundle.ours.gzipKiB)} KiB`, "growth beyond the ORT WASM, every shipped model"],
    ...Object.entries(bundle.perModel ?? {}).map(([n, o]) => [`bundle: our code + ${n} alone`, `${fmt(o.rawKiB)} KiB`, `gzip ${fmt(o.gzipKiB)} KiB`, `FOGLINE_EDGE_MODELS=${n}`]),
    ...bundle.files.map((f) => [`  file ${f.file.replace(/^([0-9a-f]{8})[0-9a-f]{32}-/, "$1…-")}`, `${fmt(f.rawKiB)} KiB`, `gzip ${fmt(f.gzipKiB)} KiB`, "every shipped model"]),
  ];
}

export const fmt = (x: number | string | null | undefined): string => (x === null || x === undefined ? "-" : typeof x === "number" ? x.toFixed(2) : x);

export function markdown(rows: Row[]): string {
  const line = (r: Row) => `| ${r.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(rows[0]!), line(rows[0]!.map(() => "---")), ...rows.slice(1).map(line)].join("\n");
}

export function table(rows: Row[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join("  ")).join("\n");
}

export function report(res: BenchResults, asMarkdown = false): string {
  const rows = reportRows(res);
  return asMarkdown ? markdown(rows) : table(rows);
}

const wireAccuracy = (res: BenchResults, precision: string) => res.wire.accuracy?.[precision as Precision]?.hybridAccuracy;

function reportRows(res: BenchResults): Row[] {
  const e = res.edgeInWorkerd.perInference;
  const n = res.nodeOrt.timings;
  const rt = res.roundTrip;
  return [
    ["measurement", "median ms", "p90 / p99 ms", "note"],
    ["edge in workerd: shipped cifar10", fmt(e.cifar10?.medianMs), fmt(e.cifar10?.p90Ms), "per inference, batch 1, (t(K)-t(0))/K; serving's ORT session"],
    ["edge in workerd: shipped cifar10, packed engine", fmt(e["cifar10 packed"]?.medianMs), fmt(e["cifar10 packed"]?.p90Ms), "the same, bit-packed XNOR/popcount WASM SIMD (workers/src/engine/)"],
    ...otherModels(res).flatMap((m) => [
      [`edge in workerd: shipped ${m}`, fmt(e[m]?.medianMs), fmt(e[m]?.p90Ms), "per inference, batch 1, (t(K)-t(0))/K; serving's ORT session"],
      ...(e[`${m} packed`] ? [[`edge in workerd: shipped ${m}, packed engine`, fmt(e[`${m} packed`]?.medianMs), fmt(e[`${m} packed`]?.p90Ms), "the same, packed k-bit engine (i8 x i7 dot products, WASM relaxed SIMD)"]] : []),
    ]),
    ...["float, opt=all", "integer, opt=all", "float, opt=basic", "integer, opt=basic"].map((k) => [
      `edge in workerd: ${k}`,
      fmt(e[k]?.medianMs),
      fmt(e[k]?.p90Ms),
      "shipped config, random weights; float = Conv over DequantizeLinear, integer = ConvInteger",
    ]),
    ["baseline: whole FP ResNet-32 in workerd", fmt(e.full?.medianMs), fmt(e.full?.p90Ms), "everything at the edge"],
    ...Object.entries(res.edgeInWorkerd.pairedRatios).map(([k, v]) => [`ratio ${k}`, fmt(v), "", "median of per-round ratios"]),
    ["tail in onnxruntime-node", fmt(n.tail?.medianMs), fmt(n.tail?.p90Ms), "shipped cloud.onnx, 1 thread"],
    ["baseline: whole FP ResNet-32 in onnxruntime-node", fmt(n.full?.medianMs), fmt(n.full?.p90Ms), "everything in the cloud, 1 thread"],
    ["edge in onnxruntime-node (native)", fmt(n.edge?.medianMs), fmt(n.edge?.p90Ms), "shipped edge.onnx, for reference"],
    ["edge in onnxruntime-node: float / integer", `${fmt(n["edge-float"]?.medianMs)} / ${fmt(n["edge-integer"]?.medianMs)}`, "", "the bench-edge pair, natively (x86 kernels)"],
    ...Object.entries(rt).map(([k, v]) => [`round trip: ${k}`, fmt(v.p50Ms), `${fmt(v.p90Ms)} / ${fmt(v.p99Ms)}`, `p50 (p99/p50 ${fmt(v.p99OverP50)}), answered at ${v.answeredAt ?? "-"}`]),
    ...Object.entries(res.coldStart).flatMap(([engine, c]) => [
      [`cold start (${engine}): first answer of a fresh isolate`, fmt(median(c.samplesMs)), fmt(Math.max(...c.samplesMs)), `${c.samplesMs.length} isolates; ${engine.endsWith("ort") ? "ORT start + session" : "checksum + parse + WASM instance"} + inference (max)`],
      [`cold start (${engine}): 2nd / 10th answer`, fmt(median(c.laterAnswersMs.map((x) => x.second))), fmt(median(c.laterAnswersMs.map((x) => x.tenth))), "same isolates"],
    ]),
    ...Object.entries(res.laterSession).map(([l, v]) => [l === "packed" ? "later session, packed engine" : `later session, opt=${l}`, fmt(v.medianMs), fmt(v.p90Ms), "create + first run - one warm run (shipped edge)"]),
    ...Object.entries(res.wire.precisions).map(([p, w]) => [
      `wire ${p}`,
      `${w.bytes} B`,
      `enc ${fmt(w.encodeMs)} / dec ${fmt(w.decodeMs)}`,
      wireAccuracy(res, p) !== undefined ? `val hybrid acc ${(100 * wireAccuracy(res, p)!).toFixed(2)}%` : "accuracy: python -m training.wire_accuracy",
    ]),
    ...Object.entries(res.cost.usdPerMillion).map(([k, v]) => [`$ per million: ${k}`, fmt(v), "", k === "workersAi" ? "Workers AI image classification" : "Workers Paid marginal prices, see cost.assumptions"]),
    ...bundleRows(res.bundle),
  ];
}

/** The shipped models besides cifar10 that this run measured (their rows are keyed "<model>" and "<model> packed"). */
function otherModels(res: BenchResults): string[] {
  return Object.keys(res.coldStart)
    .filter((k) => k.endsWith(" ort"))
    .map((k) => k.slice(0, -" ort".length));
}

/** Issue 19's goals for another shipped model (the k-bit cifar100 edge), per engine: edge part
 * warm <= 1.5 ms (stretch 1 ms), first answer of a fresh isolate <= 100 ms, edge-answered p50 <= 8 ms. */
function otherModelGoals(res: BenchResults, m: string): Row[] {
  const yes = (ok: boolean) => (ok ? "yes" : "**no**");
  const e = res.edgeInWorkerd.perInference;
  const pick = (xs: [string, number | undefined][]) => xs.filter((x): x is [string, number] => x[1] !== undefined);
  const list = (xs: [string, number][]) => xs.map(([n, v]) => `${n} ${fmt(v)} ms`).join("; ");
  const judge = (xs: [string, number][], limit: number, stretch?: number) =>
    xs.map(([n, v]) => `${n}: ${yes(v <= limit)}${stretch !== undefined && v <= stretch ? ` (and <= ${stretch} ms)` : ""}`).join("; ");
  const edges = pick([["packed", e[`${m} packed`]?.medianMs], ["onnxruntime", e[m]?.medianMs]]);
  const cold = pick([["packed", res.coldStart[`${m} packed`]?.medianMs], ["onnxruntime", res.coldStart[`${m} ort`]?.medianMs]]);
  const trips = pick([["packed", res.roundTrip[`${m} edge-answered, packed engine`]?.p50Ms], ["onnxruntime", res.roundTrip[`${m} edge-answered (exit=edge)`]?.p50Ms]]);
  return [
    [`${m}: edge part in workerd <= 1.5 ms (stretch 1 ms)`, list(edges), judge(edges, 1.5, 1)],
    [`${m}: first answer of a fresh isolate <= 100 ms`, list(cold), judge(cold, 100)],
    [`${m}: round trip p50 <= 8 ms, edge-answered`, list(trips), judge(trips, 8)],
  ];
}

/** Issue 7's goals against this run: [goal, measured, met?]. Where the shipped model has a packed
 * engine, both engines are judged (the packed one serves it by default; ORT serves the others). */
export function goals(res: BenchResults): Row[] {
  const e = res.edgeInWorkerd.perInference;
  const rt = res.roundTrip;
  const yes = (ok: boolean) => (ok ? "yes" : "**no**");
  // [label, coldStart key]: the engines this run measured
  const engines = ([["packed", "packed"], ["onnxruntime", "ort"]] as const).filter(([, k]) => res.coldStart[k]);
  // issue 7's rows are cifar10's (the default model); issue 19's for each other model follow
  const measured = (xs: [string, number | undefined][]) => xs.filter((x): x is [string, number] => x[1] !== undefined);
  const edges = measured([["packed", e["cifar10 packed"]?.medianMs], ["onnxruntime", e.cifar10?.medianMs]]);
  const trip = (kind: string, engine: string): Trip => {
    const key = engine === "packed" ? `${kind}-answered, packed engine` : `${kind}-answered (exit=${kind})`;
    const t = rt[key];
    if (!t) throw new Error(`bench results lack the round trip "${key}"`);
    return t;
  };
  const list = (xs: [string, number][], unit = " ms") => xs.map(([n, v]) => `${n} ${fmt(v)}${unit}`).join("; ");
  const floor = rt["no inference (GET /__bench/ping on the Worker)"];
  const rows: Row[] = [["goal", "measured in this run", "met?"]];
  rows.push(["edge part in workerd <= 3 ms (moonshot 1 ms)", list(edges), edges.map(([n, v]) => `${n}: ${yes(v <= 3)}${v <= 1 ? " (and <= 1 ms)" : ""}`).join("; ")]);
  for (const [kind, limit] of [["edge", 12], ["cloud", 20]] as const) {
    const xs = engines.map(([n]): [string, number] => [n, trip(kind, n).p50Ms]);
    rows.push([`round trip p50 <= ${limit} ms, ${kind}-answered`, list(xs), xs.map(([n, v]) => `${n}: ${yes(v <= limit)}`).join("; ")]);
  }
  const p99 = engines.flatMap(([n]) => ["edge", "cloud"].map((k): [string, number] => [`${k} ${n}`, trip(k, n).p99OverP50]));
  rows.push(["p99 under 2x p50", `${list(p99, "x")}; the no-inference route's own: ${fmt(floor?.p99OverP50)}x`, p99.map(([n, v]) => `${n}: ${yes(v < 2)}`).join("; ")]);
  const acc = res.wire.accuracy;
  const int8 = acc?.int8;
  rows.push(["int8 on the wire if it costs <= 0.1 points", acc && int8 ? `hybrid ${fmt(int8.hybridCostPoints)} points, final exit ${fmt(int8.finalCostPoints)} points (${acc.model} ${acc.version}, ${acc.images} validation images)` : "run python -m training.wire_accuracy", int8 ? yes(int8.hybridCostPoints <= 0.1) : "-"]);
  const cold = engines.map(([n, k]): [string, number] => [n, res.coldStart[k]!.medianMs]);
  rows.push(["cold start <= 400 ms (first answer of a fresh isolate)", list(cold), cold.map(([n, v]) => `${n}: ${yes(v <= 400)}`).join("; ")]);
  const later = measured([["packed", res.laterSession.packed?.medianMs], ["onnxruntime (opt=all, served)", res.laterSession.all?.medianMs]]);
  rows.push(["later sessions <= 15 ms", list(later), later.map(([n, v]) => `${n}: ${yes(v <= 15)}`).join("; ")]);
  const kb = (kib: number) => (kib * 1024) / 1000;
  const bundles: [string, number][] = [["every shipped model", res.bundle.ours.gzipKiB], ...Object.entries(res.bundle.perModel ?? {}).map(([n, o]): [string, number] => [`${n} alone`, o.gzipKiB])];
  rows.push(["bundle growth beyond the ORT WASM <= 300 KB gzip", bundles.map(([n, v]) => `${n} ${fmt(kb(v))} KB`).join("; "), bundles.map(([n, v]) => `${n}: ${yes(kb(v) <= 300)}`).join("; ")]);
  for (const m of otherModels(res)) rows.push(...otherModelGoals(res, m));
  return rows;
}

/** Replaces the text between `<!-- bench:begin -->` and `<!-- bench:end -->` of a doc with this
 * run: when, where, the command, the goals and the full table (docs/performance.md). */
export function writeDoc(file: string, res: BenchResults): void {
  const text = readFileSync(file, "utf8");
  const [begin, end] = ["<!-- bench:begin (written by npm run bench -- --doc; do not edit by hand) -->", "<!-- bench:end -->"];
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${file}: no ${begin} ... ${end} section to write`);
  const m = res.machine;
  const body = [
    `Measured ${res.started.slice(0, 16).replace("T", " ")} UTC with`,
    "",
    `    ${res.command}`,
    "",
    `on ${m.cpu} (${m.cores} cores, ${fmt(m.memGiB)} GiB, ${m.platform}), Node ${m.node}, load average ${m.loadavgBefore.join(" ")} before and ${m.loadavgAfter.join(" ")} after; ` +
      `shipped model \`${res.model.name}\` ${res.model.version}. Variants are interleaved round by round within this one run; compare them only within it.`,
    "",
    markdown(goals(res)),
    "",
    markdown(reportRows(res)),
  ].join("\n");
  writeFileSync(file, `${text.slice(0, i + begin.length)}\n${body}\n${text.slice(j)}`);
}
