// `npm run bench`: Fogline's performance, measured side by side in one run (docs/performance.md).
//
//   npm run bench [-- --quick] [-- --rounds N] [-- --requests N] [-- --warmup N] [-- --cold N] [-- --out FILE]
//   npm run bench -- --bundle-only     the bundle sizes alone (seconds; no timing)
//   npm run bench -- --edge-only       the shipped models' edge part in workerd alone, on both
//                                      engines (one wrangler dev; a minute; no doc, no JSON)
//   npm run bench -- --doc docs/performance.md   also writes the goals and the table into the doc's
//                                      bench:begin/end section
//
// What it measures (variants interleaved round by round, so background load hits all alike):
//   edge part inside workerd   wrangler dev with a bench-only entry (scripts/bench/worker.ts): a
//                              request running the edge graph K times, timed from outside, minus a
//                              K=0 request; shipped model, the same config with float vs integer
//                              quantized convs, and the whole FP ResNet-32 ("everything at the edge");
//                              the other shipped models (cifar100) on both engines too
//   onnxruntime-node           the shipped tail, the whole FP ResNet-32 ("everything in the cloud"),
//                              and the edge graphs natively, one intra-op thread (the cloud default)
//   round trip                 POST /v1/classify with a 32x32 PNG: edge-answered (exit=edge),
//                              cloud-answered (exit=cloud), both baselines behind the same API;
//                              p50/p99 of sequential requests
//   wire                       bytes per precision (shared/src/wire.ts) and encode/decode time; the
//                              accuracy cost comes from `python -m training.wire_accuracy`
//   cold start                 first answer of a fresh isolate (ORT start-up + session + inference),
//                              and a later session in a warm isolate
//   bundle                     `wrangler deploy --dry-run`: raw and gzip, ORT WASM vs the rest, with
//                              every shipped model and with each alone (FOGLINE_EDGE_MODELS)
//
// It runs on a private copy of the sources (.bench/tree) so that the generated model registry of
// the bench models never touches the working tree's. Writes .bench/results.json (or --out).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import type { Manifest } from "@fogline/shared/schemas/manifest";
import { signedTailRequest } from "../workers/src/cloud/tail-request.js";
import { decodeActivation, encodeActivation, encodedSize } from "@fogline/shared/wire";
import { bundleRows, fmt, goals, markdown, median, quantile, report, table, writeDoc, type BenchResults } from "./bench/report.js";
import { freePort, HOST, newSecret, privateSecretFile, ROOT, spawnCloud, spawnEdge, stopAll, waitForUrl, WRANGLER_JS, NodeProcess } from "./lib/stack.js";

const root = ROOT;
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
function opt(name: string, dflt: string | number): string;
function opt(name: string): string | undefined;
function opt(name: string, dflt?: string | number): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt === undefined ? undefined : String(dflt);
}
const quick = flag("quick");
const ROUNDS = Number(opt("rounds", quick ? 5 : 25)); // edge-in-workerd rounds
const REQUESTS = Number(opt("requests", quick ? 40 : 200)); // round-trip requests per variant
const COLD = Number(opt("cold", quick ? 1 : 3)); // fresh isolates
// Untimed requests per round-trip target first: V8 tiers ORT's WASM up over the first tens of
// runs (cold start: the 10th answer still takes ~2x a warm one), which is start-up, not p99.
const WARMUP = Number(opt("warmup", quick ? 5 : 50));
const OUT = resolve(root, opt("out", ".bench/results.json"));
const benchDir = join(root, ".bench");
const tree = join(benchDir, "tree");
const benchModels = join(benchDir, "models");
/** The training venv's Python (made or brought up to date by scripts/python-env.sh, as `npm test`
 * does), unless FOGLINE_PYTHON names another: the bench models need torch. */
function trainingPython(): string {
  if (process.env.FOGLINE_PYTHON) return process.env.FOGLINE_PYTHON;
  const r = spawnSync("bash", [join(root, "scripts/python-env.sh"), "training"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("scripts/python-env.sh training failed: the bench needs .venv (training/requirements.txt), or FOGLINE_PYTHON");
  return join(root, ".venv/bin/python");
}
const wranglerJs = WRANGLER_JS;
const host = HOST;
const log = (msg: string) => console.error(`[bench] ${msg}`);

// ---------------------------------------------------------------- helpers
/** two decimals; null for NaN/Infinity (JSON has neither). Typed as a number: the report reads them as such */
const r2 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 100) / 100 : (null as unknown as number));
const now = () => Number(process.hrtime.bigint()) / 1e6;

interface RequestInit {
  method?: string;
  body?: Uint8Array;
  headers?: Record<string, string>;
}
interface Answer {
  status: number | undefined;
  body: Buffer;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
/** One HTTP request; resolves with status, body and the wall time from send to the last byte. */
function request(url: string, { method = "GET", body, headers = {} }: RequestInit = {}): Promise<Answer> {
  return new Promise((res, rej) => {
    const t0 = now();
    const req = http.request(url, { method, agent, headers: { ...headers, ...(body ? { "content-length": body.length } : {}) } }, (r) => {
      const chunks: Buffer[] = [];
      r.on("data", (c: Buffer) => chunks.push(c));
      r.on("end", () => res({ status: r.statusCode, body: Buffer.concat(chunks), ms: now() - t0 }));
      r.on("error", rej);
    });
    req.on("error", rej);
    if (body) req.write(body);
    req.end();
  });
}
async function ok(url: string, opts?: RequestInit): Promise<Answer> {
  const r = await request(url, opts);
  if (r.status !== 200) throw new Error(`${opts?.method ?? "GET"} ${url}: ${r.status} ${r.body.toString().slice(0, 300)}`);
  return r;
}

const stopProcess = (p: NodeProcess | undefined) => p?.stop() ?? Promise.resolve();
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => stopAll().then(() => process.exit(130)));

// ---------------------------------------------------------------- set-up
function prepareTree() {
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, "test"), { recursive: true });
  for (const p of ["workers", "shared", "cloud", "scripts", "wrangler.toml", "package.json", "tsconfig.base.json"]) {
    cpSync(join(root, p), join(tree, p), { recursive: true, filter: (src) => !src.endsWith(".generated.ts") });
  }
  symlinkSync(join(root, "node_modules"), join(tree, "node_modules"), "dir");
}

/** The shipped models besides cifar10 (whose configuration the bench-only models copy): each gets
 * its own rows on both engines (issue 19: the k-bit cifar100 edge). */
const OTHER_SHIPPED = readdirSync(join(root, "models"))
  .filter((n) => n !== "cifar10" && existsSync(join(root, "models", n, "manifest.json")))
  .sort();

function buildBenchModels() {
  const python = trainingPython();
  log(`building bench models with ${python} -m training.bench_models`);
  const r = spawnSync(python, ["-m", "training.bench_models", "--like", "models/cifar10", "--out", benchDir], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`training.bench_models failed (set FOGLINE_PYTHON?):\n${r.stderr}`);
  // as training.bench_models copies cifar10: the folder without its plots and calibration data
  for (const n of OTHER_SHIPPED) {
    cpSync(join(root, "models", n), join(benchModels, n), { recursive: true, filter: (src) => !src.endsWith(".png") && !src.endsWith("calibration.json") });
  }
}

/** Does the bench copy of a shipped model ship a packed engine file (training/pack.py)? */
const shipsPacked = (name: string): boolean => Boolean(JSON.parse(readFileSync(join(benchModels, name, "manifest.json"), "utf8")).files?.engine);

/** One edge-in-workerd variant: a model, an engine, a graphOptimizationLevel for a private session. */
interface Variant {
  name: string;
  model: string;
  engine?: string;
  opt?: string;
}

/** The edge-in-workerd variants of the other shipped models: ORT and, where it ships one, the packed engine. */
const otherEdgeVariants = (): Variant[] =>
  OTHER_SHIPPED.flatMap((n) => [{ name: n, model: n, engine: "ort" }, ...(shipsPacked(n) ? [{ name: `${n} packed`, model: n, engine: "packed" }] : [])]);

/** The Worker bundle with the shipped models (`selection`: FOGLINE_EDGE_MODELS, "" = all). */
function bundleSize(selection = ""): BenchResults["bundle"] {
  log(`wrangler deploy --dry-run (shipped models: ${selection || "all"})`);
  const outdir = join(benchDir, "dist");
  rmSync(outdir, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [wranglerJs, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: tree,
    encoding: "utf8",
    env: { ...process.env, FOGLINE_MODELS_DIR: join(root, "models"), FOGLINE_EDGE_MODELS: selection, WRANGLER_SEND_METRICS: "false" },
  });
  const text = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${text}`);
  const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(text);
  const files = readdirSync(outdir)
    .filter((f) => statSync(join(outdir, f)).isFile() && !f.endsWith(".map"))
    .map((f) => {
      const bytes = readFileSync(join(outdir, f));
      return { file: f, rawKiB: r2(bytes.length / 1024), gzipKiB: r2(gzipSync(bytes, { level: 9 }).length / 1024) };
    });
  type File = (typeof files)[number];
  const sum = (pred: (f: File) => boolean, k: "rawKiB" | "gzipKiB") => r2(files.filter(pred).reduce((a, f) => a + f[k], 0));
  // ORT's WASM apart from the rest (the packed engine's 3 KB binconv.wasm counts as ours)
  const isWasm = (f: File) => f.file.endsWith(".wasm") && f.file.includes("ort-wasm");
  return {
    wrangler: m ? { rawKiB: Number(m[1]), gzipKiB: Number(m[2]) } : (null as unknown as undefined),
    files,
    ortWasm: { rawKiB: sum(isWasm, "rawKiB"), gzipKiB: sum(isWasm, "gzipKiB") },
    ours: { rawKiB: sum((f) => !isWasm(f), "rawKiB"), gzipKiB: sum((f) => !isWasm(f), "gzipKiB") },
  };
}

/** The bundle with every shipped model, then with each alone: `ours` (growth beyond the ORT WASM) per model. */
function bundleSizes(): BenchResults["bundle"] {
  const all = bundleSize();
  const shipped = readdirSync(join(root, "models")).filter((n) => existsSync(join(root, "models", n, "manifest.json"))).sort();
  const perModel = Object.fromEntries(shipped.map((n) => [n, bundleSize(n).ours]));
  return { ...all, perModel };
}


// ---------------------------------------------------------------- measurements
function testPng(): Buffer {
  type Vector = { name: string; contentType: string; imageBase64: string };
  const vectors = JSON.parse(readFileSync(join(root, "models/cifar10/testvectors.json"), "utf8")) as { vectors: Vector[] };
  const v = vectors.vectors.find((x) => x.name === "png-32x32-noise") ?? vectors.vectors.find((x) => x.contentType === "image/png");
  if (!v) throw new Error("models/cifar10/testvectors.json has no PNG");
  return Buffer.from(v.imageBase64, "base64");
}

/** The first answers of a fresh isolate: [1st (engine start + session + inference), 2nd, 10th]. */
async function coldStart(edgeUrl: string, png: Buffer, engine: string, model = "cifar10"): Promise<number[]> {
  const times: number[] = [];
  for (let i = 1; i <= 10; i++) {
    const r = await ok(`${edgeUrl}/v1/classify?exit=edge&engine=${engine}&model=${model}`, { method: "POST", body: png, headers: { "content-type": "image/png" } });
    if (i === 1 || i === 2 || i === 10) times.push(r2(r.ms));
  }
  return times;
}

/** variants: [{ name, model, opt? }]; opt = a graphOptimizationLevel for a private session. */
async function edgeInWorkerd(edgeUrl: string, variants: Variant[]) {
  const K = (v: Variant) => (v.model === "bench-full-edge" ? 5 : v.engine === "packed" ? 40 : 10);
  const url = (v: Variant, k: number) => `${edgeUrl}/__bench/edge?model=${v.model}&k=${k}${v.opt ? `&opt=${v.opt}` : ""}${v.engine ? `&engine=${v.engine}` : ""}`;
  // warm: V8 compiles ORT's WASM lazily and tiers hot functions up in the background, so the
  // first runs of a fresh isolate are several times slower than steady state (see cold start)
  for (let i = 0; i < 3; i++) for (const v of variants) await ok(url(v, K(v)));
  const per: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  const overhead: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let j = 0; j < variants.length; j++) {
      const v = variants[(j + round) % variants.length]!;
      const t0 = (await ok(url(v, 0))).ms;
      const tk = (await ok(url(v, K(v)))).ms;
      per[v.name]!.push((tk - t0) / K(v));
      overhead.push(t0);
    }
  }
  // paired ratios (same round, so the same background load): robust where medians drift
  const ratio = (a: string, b: string) => {
    const pa = per[a];
    const pb = per[b];
    return pa && pb ? r2(median(pa.map((x, i) => x / pb[i]!))) : null;
  };
  const timing = (v: Variant) => {
    const xs = per[v.name]!;
    return { medianMs: r2(median(xs)), p25Ms: r2(quantile(xs, 0.25)), p90Ms: r2(quantile(xs, 0.9)), samples: xs.length, k: K(v) };
  };
  return {
    perInference: Object.fromEntries(variants.map((v) => [v.name, timing(v)])),
    pairedRatios: {
      "integer / float (opt=all)": ratio("integer, opt=all", "float, opt=all"),
      "integer / float (opt=basic)": ratio("integer, opt=basic", "float, opt=basic"),
      "basic / all (integer)": ratio("integer, opt=basic", "integer, opt=all"),
      "basic / all (float)": ratio("float, opt=basic", "float, opt=all"),
      "full FP ResNet-32 / shipped edge": ratio("full", "cifar10"),
      ...(per["cifar10 packed"] && { "packed engine / ORT (shipped cifar10)": ratio("cifar10 packed", "cifar10") }),
      ...Object.fromEntries(OTHER_SHIPPED.filter((n) => per[`${n} packed`] && per[n]).map((n) => [`packed engine / ORT (shipped ${n})`, ratio(`${n} packed`, n)])),
    },
    requestOverheadMs: r2(median(overhead)),
  };
}

/** A fresh session + first run, minus one warm run, per graphOptimizationLevel (or "packed": a fresh
 * packed engine, minus one warm packed run), interleaved. */
async function laterSessions(edgeUrl: string, levels: string[]) {
  const s: Record<string, number[]> = Object.fromEntries(levels.map((l) => [l, []]));
  for (let i = 0; i < Math.max(5, ROUNDS); i++) {
    for (let j = 0; j < levels.length; j++) {
      const l = levels[(i + j) % levels.length]!;
      const q = l === "packed" ? "engine=packed" : `opt=${l}`;
      const one = (await ok(`${edgeUrl}/__bench/edge?model=cifar10&k=1${l === "packed" ? "&engine=packed" : ""}`)).ms;
      const fresh = (await ok(`${edgeUrl}/__bench/session?model=cifar10&${q}`)).ms;
      s[l]!.push(fresh - one);
    }
  }
  return Object.fromEntries(levels.map((l) => [l, { medianMs: r2(median(s[l]!)), p90Ms: r2(quantile(s[l]!, 0.9)), samples: s[l]!.length }]));
}

/** A round-trip target: POST the PNG (or GET), or send what `make` builds (a fresh signed tail call). */
interface Target {
  name: string;
  url: string;
  method?: "GET" | "POST";
  make?: () => Promise<RequestInit>;
}

async function roundTrips(targets: Target[], png: Buffer) {
  const lat: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
  const headers = { "content-type": "image/png" };
  const init = async (t: Target): Promise<RequestInit> => (t.make ? { method: "POST", ...(await t.make()) } : { method: t.method ?? "POST", body: t.method === "GET" ? undefined : png, headers });
  for (let i = 0; i < WARMUP; i++) for (const t of targets) await ok(t.url, await init(t));
  const answered: Record<string, string | undefined> = {};
  for (let i = 0; i < REQUESTS; i++) {
    for (let j = 0; j < targets.length; j++) {
      const t = targets[(i + j) % targets.length]!;
      const req = await init(t); // built (signed) before the clock starts
      const r = await ok(t.url, req);
      lat[t.name]!.push(r.ms);
      if (i === 0 && t.method !== "GET" && !t.make) answered[t.name] = (JSON.parse(r.body.toString()) as { exit?: { at: string } }).exit?.at;
    }
  }
  return Object.fromEntries(
    targets.map((t) => {
      const xs = lat[t.name]!;
      const p50 = median(xs);
      const p99 = quantile(xs, 0.99);
      return [t.name, { p50Ms: r2(p50), p90Ms: r2(quantile(xs, 0.9)), p99Ms: r2(p99), p99OverP50: r2(p99 / p50), requests: xs.length, answeredAt: answered[t.name] ?? null }];
    }),
  );
}

interface Graph {
  path: string;
  input: string;
  dims: number[];
}

async function nodeOrt(graphs: Record<string, Graph>) {
  const mod = await import("onnxruntime-node");
  const ort = (mod as unknown as { default?: typeof mod }).default?.InferenceSession ? (mod as unknown as { default: typeof mod }).default : mod;
  const sessions: Record<string, InferenceSession> = {};
  for (const [name, g] of Object.entries(graphs)) {
    sessions[name] = await ort.InferenceSession.create(readFileSync(g.path), { executionProviders: ["cpu"], graphOptimizationLevel: "all", intraOpNumThreads: 1, interOpNumThreads: 1 });
  }
  const feeds = Object.fromEntries(
    Object.entries(graphs).map(([name, g]) => {
      const n = g.dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n).map((_, i) => Math.sin(i * 12.9898) * (g.input === "split" ? 2 : 1));
      if (g.input === "split") for (let i = 0; i < n; i++) data[i] = Math.max(0, data[i]!);
      return [name, { [g.input]: new ort.Tensor("float32", data, g.dims) }];
    }),
  ) as Record<string, Record<string, Tensor>>;
  const names = Object.keys(graphs);
  for (const n of names) for (let i = 0; i < 5; i++) await sessions[n]!.run(feeds[n]!);
  const t: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const reps = quick ? 40 : 150;
  for (let i = 0; i < reps; i++) {
    for (let j = 0; j < names.length; j++) {
      const n = names[(i + j) % names.length]!;
      const t0 = now();
      await sessions[n]!.run(feeds[n]!);
      t[n]!.push(now() - t0);
    }
  }
  const splitOut = feeds.edge ? await sessions.edge?.run(feeds.edge) : undefined;
  return {
    timings: Object.fromEntries(names.map((n) => [n, { medianMs: r2(median(t[n]!)), p90Ms: r2(quantile(t[n]!, 0.9)), samples: t[n]!.length }])),
    split: splitOut?.split as Tensor | undefined,
  };
}

function wire(split: Tensor, fingerprint: string) {
  const shape = [...split.dims];
  const data = split.data as Float32Array;
  const out: Record<string, { bytes: number; expectedBytes: number; encodeMs: number; decodeMs: number }> = {};
  for (const precision of ["fp32", "fp16", "int8"] as const) {
    const enc: number[] = [];
    const dec: number[] = [];
    let bytes: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < (quick ? 50 : 200); i++) {
      let t0 = now();
      bytes = encodeActivation(data, shape, fingerprint, precision);
      enc.push(now() - t0);
      t0 = now();
      decodeActivation(bytes);
      dec.push(now() - t0);
    }
    out[precision] = { bytes: bytes.length, expectedBytes: encodedSize(shape, precision), encodeMs: r2(median(enc)), decodeMs: r2(median(dec)) };
  }
  const accFile = join(benchDir, "wire-accuracy.json");
  return { shape, precisions: out, accuracy: existsSync(accFile) ? JSON.parse(readFileSync(accFile, "utf8")) : null };
}

/** A fresh signed `POST /v1/tail/{model}` call (int8 wire, new nonce: replays are refused). */
function signedTail(secret: string, manifest: Manifest): () => Promise<RequestInit> {
  const shape = [1, ...manifest.split.shape];
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.max(0, Math.sin(i * 12.9898) * 2));
  const body = encodeActivation(data, shape, manifest.fingerprint, "int8");
  return async () => {
    const call = await signedTailRequest({ secret, fingerprint: manifest.fingerprint, body });
    return { ...call, body: Buffer.from(call.body) };
  };
}

// ---------------------------------------------------------------- cost
// Workers Paid, Standard usage model (https://developers.cloudflare.com/workers/platform/pricing/):
// $0.30 per million requests beyond 10 M/month, $0.02 per million CPU-ms beyond 30 M/month,
// $5/month subscription. Marginal prices, i.e. beyond the included allotments.
const PRICES = {
  source: "https://developers.cloudflare.com/workers/platform/pricing/ (Standard usage model)",
  requestPerMillion: 0.3,
  cpuMsPerMillion: 0.02,
  workersAiImageClassificationPerMillion: 2.51,
};

/** Dollars per million requests from measured per-request CPU-ms (local wall time as a proxy). */
type Results = Omit<BenchResults, "cost" | "roundTrip" | "nodeOrt" | "wire" | "model"> & {
  model: BenchResults["model"] & { fingerprint: string };
  roundTrip: Record<string, BenchResults["roundTrip"][string] & { requests: number }>;
  nodeOrt: { timings: Record<string, { medianMs: number; p90Ms: number; samples: number }> };
  wire: BenchResults["wire"] & { precisions: Record<string, { encodeMs: number }> };
  cost?: ReturnType<typeof cost>;
  [key: string]: unknown;
};

function trip(rt: Results["roundTrip"], name: string) {
  const t = rt[name];
  if (!t) throw new Error(`no round trip "${name}"`);
  return t;
}

function cost(res: Results, manifest: Manifest) {
  const rt = res.roundTrip;
  const floor = trip(rt, "no inference (GET /__bench/ping on the Worker)").p50Ms;
  // the served engine: packed (the default for the shipped W1A1 model); ORT for comparison
  const edgeCpu = Math.max(0, (rt["edge-answered, packed engine"] ?? trip(rt, "edge-answered (exit=edge)")).p50Ms - floor);
  const edgeCpuOrt = Math.max(0, trip(rt, "edge-answered (exit=edge)").p50Ms - floor);
  const fullEdgeCpu = Math.max(0, trip(rt, "baseline everything at the edge (Worker, FP ResNet-32)").p50Ms - floor);
  const encode = res.wire.precisions.int8!.encodeMs;
  const tail = res.nodeOrt.timings.tail!.medianMs;
  const full = res.nodeOrt.timings.full!.medianMs;
  const f = manifest.validation?.edgeFraction ?? 0.65;
  const usd = (requests: number, cpuMs: number) => r2(requests * PRICES.requestPerMillion + cpuMs * PRICES.cpuMsPerMillion);
  return {
    prices: PRICES,
    assumptions:
      "Worker CPU-ms per request = round-trip p50 minus the no-inference p50 (local wall time; the Workers bill counts CPU), with the packed engine (the served default; *Ort: onnxruntime-web). " +
      "The cloud tail (any Node host) is priced at the same $ per CPU-ms for comparability, without a request fee.",
    edgeFraction: f,
    workerCpuMs: { edgeAnswered: r2(edgeCpu), cloudAnswered: r2(edgeCpu + encode), edgeAnsweredOrt: r2(edgeCpuOrt), everythingAtTheEdge: r2(fullEdgeCpu) },
    cloudCpuMs: { tail, everythingInTheCloud: full },
    usdPerMillion: {
      edgeAnswered: usd(1, edgeCpu),
      cloudAnswered: usd(1, edgeCpu + encode + tail),
      hybridAtEdgeFraction: usd(1, edgeCpu + (1 - f) * (encode + tail)),
      hybridAtEdgeFractionOrt: usd(1, edgeCpuOrt + (1 - f) * (encode + tail)),
      everythingAtTheEdge: usd(1, fullEdgeCpu),
      everythingInTheCloud: usd(0, full),
      workersAi: PRICES.workersAiImageClassificationPerMillion,
    },
  };
}

/** wrangler dev with the bench entry on a free port: a fresh isolate. */
async function startEdge(cloudUrl: string, secretFile?: string): Promise<{ edge: NodeProcess; edgeUrl: string }> {
  const port = await freePort();
  const edge = spawnEdge({
    cwd: tree,
    port,
    entry: "scripts/bench/worker.ts",
    vars: { CLOUD_URL: cloudUrl, LOG_LEVEL: "warn" },
    envFiles: secretFile ? [secretFile] : [],
    env: { FOGLINE_MODELS_DIR: benchModels },
    keepChars: 20_000,
  });
  const edgeUrl = `http://${host}:${port}`;
  await waitForUrl(`${edgeUrl}/__bench/ping`, edge, 180_000);
  return { edge, edgeUrl };
}

/** `--edge-only`: every shipped model's edge part in workerd, both engines interleaved; printed only. */
async function edgeOnly() {
  const { edgeUrl } = await startEdge("http://127.0.0.1:9"); // no cloud: edge inference only
  const variants = [
    { name: "cifar10", model: "cifar10", engine: "ort" },
    ...(shipsPacked("cifar10") ? [{ name: "cifar10 packed", model: "cifar10", engine: "packed" }] : []),
    ...otherEdgeVariants(),
  ];
  const res = await edgeInWorkerd(edgeUrl, variants);
  await stopAll();
  const rows: string[][] = [["edge in workerd (--edge-only)", "median ms", "p25 / p90 ms", "samples x K"]];
  for (const [name, t] of Object.entries(res.perInference)) rows.push([name, fmt(t.medianMs), `${fmt(t.p25Ms)} / ${fmt(t.p90Ms)}`, `${t.samples} x ${t.k}`]);
  for (const [name, r] of Object.entries(res.pairedRatios)) if (r !== null) rows.push([`ratio ${name}`, fmt(r), "", "median of per-round ratios"]);
  console.log(`Fogline bench --edge-only: ${os.cpus()[0]?.model} x${os.cpus().length}, load ${os.loadavg().map(r2).join(" ")}, ${ROUNDS} rounds`);
  console.log(table(rows));
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const started = new Date().toISOString();
  const loadBefore = os.loadavg();
  prepareTree();
  if (flag("bundle-only")) {
    const bundle = bundleSizes();
    const outFile = OUT.replace(/\.json$/, "") + ".bundle.json";
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify({ started, bundle }, null, 2)}\n`);
    console.log(markdown([["measure", "raw", "gzip -9", "notes"], ...bundleRows(bundle)]));
    console.log(`\nJSON: ${outFile}`);
    return;
  }
  buildBenchModels();
  if (flag("edge-only")) return edgeOnly();
  const bundle = bundleSizes();
  const png = testPng();
  const secret = newSecret();
  // wrangler gets the secret from a private file, not its command line (`ps` shows those)
  const secretFile = privateSecretFile(secret, "fogline-bench-").file;

  const [cloudPort, fullPort] = [await freePort(), await freePort()];
  log("starting the cloud half and the full-precision cloud baseline");
  const cloud = spawnCloud({ cwd: tree, host, port: cloudPort, secret, env: { FOGLINE_MODELS_DIR: benchModels }, keepChars: 20_000 });
  const full = new NodeProcess({
    name: "full-cloud",
    cwd: tree,
    args: ["--import", "tsx", "scripts/bench/full-cloud.ts", join(benchDir, "graphs/full_fp.onnx"), join(benchModels, "cifar10/manifest.json"), String(fullPort)],
    keepChars: 20_000,
  });
  const cloudUrl = `http://${host}:${cloudPort}`;
  const fullUrl = `http://${host}:${fullPort}`;
  await Promise.all([waitForUrl(`${cloudUrl}/healthz`, cloud, 120_000), waitForUrl(`${fullUrl}/healthz`, full, 120_000)]);

  // cold starts alternate the engine answering the first request: ORT, packed, ORT, ...
  // the packed engine's rows only where the shipped model has an engine file (training/pack.py)
  const hasPacked = shipsPacked("cifar10");
  if (!hasPacked) log("models/cifar10 ships no packed engine: measuring onnxruntime only");
  // [results key, model, engine]: cifar10's keys are the engines; other models' are "<model> <engine>"
  type ColdTarget = [key: string, model: string, engine: string];
  const coldTargets: ColdTarget[] = [
    ["ort", "cifar10", "ort"],
    ...(hasPacked ? [["packed", "cifar10", "packed"] as ColdTarget] : []),
    ...OTHER_SHIPPED.flatMap((n): ColdTarget[] => [[`${n} ort`, n, "ort"], ...(shipsPacked(n) ? [[`${n} packed`, n, "packed"] as ColdTarget] : [])]),
  ];
  const cold: Record<string, { samplesMs: number[]; laterAnswersMs: { second: number; tenth: number }[] }> = Object.fromEntries(
    coldTargets.map(([key]) => [key, { samplesMs: [], laterAnswersMs: [] }]),
  );
  let edge: NodeProcess | undefined;
  let edgeUrl = "";
  for (let i = 0; i < COLD * coldTargets.length; i++) {
    const [key, model, engine] = coldTargets[i % coldTargets.length]!;
    await stopProcess(edge);
    log(`starting wrangler dev (fresh isolate ${i + 1}/${COLD * coldTargets.length}, ${model}, engine=${engine})`);
    ({ edge, edgeUrl } = await startEdge(cloudUrl, secretFile));
    const [first, second, tenth] = (await coldStart(edgeUrl, png, engine, model)) as [number, number, number];
    cold[key]!.samplesMs.push(first);
    cold[key]!.laterAnswersMs.push({ second, tenth });
    log(`cold start (${model}, ${engine}) ${first} ms (2nd answer ${second} ms, 10th ${tenth} ms)`);
  }

  log("edge graphs inside workerd");
  const edgeVariants: Variant[] = [
    { name: "cifar10", model: "cifar10" },
    ...(hasPacked ? [{ name: "cifar10 packed", model: "cifar10", engine: "packed" }] : []),
    { name: "float, opt=all", model: "bench-edge-float", opt: "all" },
    { name: "integer, opt=all", model: "bench-edge-integer", opt: "all" },
    { name: "float, opt=basic", model: "bench-edge-float", opt: "basic" },
    { name: "integer, opt=basic", model: "bench-edge-integer", opt: "basic" },
    { name: "full", model: "bench-full-edge" },
    ...otherEdgeVariants(),
  ];
  const edgeInWorkerdRes = await edgeInWorkerd(edgeUrl, edgeVariants);
  log("later sessions");
  const laterSession = await laterSessions(edgeUrl, ["all", "basic", "disabled", ...(hasPacked ? ["packed"] : [])]);

  log("round trips");
  const shippedManifest = JSON.parse(readFileSync(join(benchModels, "cifar10/manifest.json"), "utf8")) as Manifest;
  const cls = (q: string) => `${edgeUrl}/v1/classify?${q}`;
  const roundTrip = await roundTrips(
    [
      { name: "edge-answered (exit=edge)", url: cls("exit=edge&engine=ort") },
      { name: "cloud-answered (exit=cloud)", url: cls("exit=cloud&engine=ort") },
      ...(hasPacked
        ? [
            { name: "edge-answered, packed engine", url: cls("exit=edge&engine=packed") },
            { name: "cloud-answered, packed engine", url: cls("exit=cloud&engine=packed") },
          ]
        : []),
      ...OTHER_SHIPPED.flatMap((n) => [
        { name: `${n} edge-answered (exit=edge)`, url: cls(`model=${n}&exit=edge&engine=ort`) },
        { name: `${n} cloud-answered (exit=cloud)`, url: cls(`model=${n}&exit=cloud&engine=ort`) },
        ...(shipsPacked(n)
          ? [
              { name: `${n} edge-answered, packed engine`, url: cls(`model=${n}&exit=edge&engine=packed`) },
              { name: `${n} cloud-answered, packed engine`, url: cls(`model=${n}&exit=cloud&engine=packed`) },
            ]
          : []),
      ]),
      { name: "baseline everything in the cloud (Node, FP ResNet-32)", url: `${fullUrl}/v1/classify` },
      { name: "baseline everything at the edge (Worker, FP ResNet-32)", url: cls("model=bench-full-edge&exit=edge") },
      { name: "no inference (GET /__bench/ping on the Worker)", url: `${edgeUrl}/__bench/ping`, method: "GET" },
      { name: "cloud tail alone (signed POST /v1/tail from Node, int8)", url: `${cloudUrl}/v1/tail/cifar10`, make: signedTail(secret, shippedManifest) },
    ],
    png,
  );
  await stopAll();

  log("onnxruntime-node");
  const manifest = JSON.parse(readFileSync(join(benchModels, "cifar10/manifest.json"), "utf8")) as Manifest;
  const [c, h, w] = manifest.split.shape as [number, number, number];
  const nodeRes = await nodeOrt({
    tail: { path: join(benchModels, "cifar10/cloud.onnx"), input: "split", dims: [1, c, h, w] },
    full: { path: join(benchDir, "graphs/full_fp.onnx"), input: "image", dims: [1, 3, 32, 32] },
    edge: { path: join(benchModels, "cifar10/edge.onnx"), input: "image", dims: [1, 3, 32, 32] },
    "edge-float": { path: join(benchModels, "bench-edge-float/edge.onnx"), input: "image", dims: [1, 3, 32, 32] },
    "edge-integer": { path: join(benchModels, "bench-edge-integer/edge.onnx"), input: "image", dims: [1, 3, 32, 32] },
  });
  if (!nodeRes.split) throw new Error("the edge graph gave no split output");
  const wireRes = wire(nodeRes.split, manifest.fingerprint);
  delete nodeRes.split;

  const cpus = os.cpus();
  const results: Results = {
    command: `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`,
    started,
    finished: new Date().toISOString(),
    machine: {
      cpu: cpus[0]?.model,
      cores: cpus.length,
      memGiB: r2(os.totalmem() / 2 ** 30),
      loadavgBefore: loadBefore.map(r2),
      loadavgAfter: os.loadavg().map(r2),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
    },
    model: { name: manifest.name, version: manifest.version, fingerprint: manifest.fingerprint },
    settings: { rounds: ROUNDS, requests: REQUESTS, warmup: WARMUP, coldIsolates: COLD },
    edgeInWorkerd: edgeInWorkerdRes,
    nodeOrt: nodeRes,
    roundTrip,
    coldStart: Object.fromEntries(Object.entries(cold).map(([e, c]) => [e, { ...c, medianMs: r2(median(c.samplesMs)) }])),
    laterSession,
    wire: wireRes,
    bundle,
  };
  results.cost = cost(results, manifest);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(OUT.replace(/\.json$/, "") + ".md", `${markdown(goals(results as BenchResults))}\n\n${report(results as BenchResults, true)}\n`);
  const doc = opt("doc");
  if (doc) writeDoc(resolve(root, doc), results as BenchResults);
  console.log(`Fogline bench: ${results.machine.cpu} x${results.machine.cores}, load ${results.machine.loadavgBefore.join(" ")} -> ${results.machine.loadavgAfter.join(" ")}, ${results.model.version}`);
  console.log(report(results as BenchResults));
  console.log(`\n${table(goals(results as BenchResults))}`);
  console.log(`\nJSON: ${OUT} (markdown table next to it)`);
}

main().catch(async (e) => {
  console.error(e);
  await stopAll();
  process.exit(1);
});
