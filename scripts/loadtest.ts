// `npm run loadtest`: load test of the whole stack as `npm start` runs it (docs/reliability.md).
//
//   npm run loadtest [-- --duration 60] [-- --connections 32] [-- --warmup 60] [-- --url URL]
//                    [-- --in-place] [-- --out FILE] [-- --only NAME,...] [-- --queries "q1,q2"]
//
// Starts scripts/start.ts (what `npm start` runs: the cloud on Node, the edge in wrangler dev)
// on its own ports (FOGLINE_EDGE_PORT / FOGLINE_CLOUD_PORT, default 8797 / 8798), waits for
// `ready`, warms it up at the same load (60 s by default: workerd's RSS climbs for about a minute
// while V8 sizes its heaps, then levels off), then drives POST /v1/classify with autocannon: `--connections` concurrent
// clients for `--duration` seconds over a mix of images (the model's CIFAR-sized test vectors,
// PNG and JPEG, plus larger photos-like PNG/JPEG) and queries (the calibrated threshold, and
// threshold=0 so that a good share is answered by the cloud). Prints throughput, latency
// percentiles, the error count (non-2xx, connection errors, timeouts), exits by point, degraded
// answers, and the resident memory of the cloud process and workerd at start and end.
// The server's own output goes to .loadtest/server.log. With --url it targets a running edge and
// reports no memory.
//
// By default the stack runs from a copy of the sources (.loadtest/tree, node_modules linked):
// wrangler dev rebuilds and restarts the Worker whenever a watched file changes, and a restart
// fails the POSTs in flight with 503 ("Your worker restarted mid-request"), so an edit made during
// the run would show up as load-test errors. --in-place runs in the working tree itself.
import { spawnSync } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join, resolve } from "node:path";
import { encode as encodePng } from "fast-png";
import jpeg from "jpeg-js";
import { descendants, stackMemory, type StackMemory } from "./lib/processes.js";
import { ROOT, spawnStart, type NodeProcess } from "./lib/stack.js";

const root = ROOT;
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- autocannon (no type package): what this script uses of it
interface CannonRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  onResponse?: (status: number, body: string) => void;
}
interface CannonOptions {
  url: string;
  connections: number;
  duration: number;
  requests: CannonRequest[];
  timeout: number;
}
interface CannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  requests: { total: number; average: number };
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  statusCodeStats: Record<string, { count: number }>;
}
interface Autocannon {
  (opts: CannonOptions, done: (err: Error | null, result: CannonResult) => void): unknown;
  track(instance: unknown, opts: Record<string, boolean>): void;
}
const autocannon = require("autocannon") as Autocannon;

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string;
function opt(name: string, dflt?: string): string | undefined;
function opt(name: string, dflt?: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}
const duration = Number(opt("duration", "60"));
const connections = Number(opt("connections", "32"));
const warmup = Number(opt("warmup", "60"));
const edgePort = Number(process.env.FOGLINE_EDGE_PORT ?? 8797);
const cloudPort = Number(process.env.FOGLINE_CLOUD_PORT ?? 8798);
const target = opt("url") ?? `http://127.0.0.1:${edgePort}`;
const outDir = join(root, ".loadtest");
const outFile = resolve(opt("out", join(outDir, "result.json")));
mkdirSync(outDir, { recursive: true });

const log = (msg: string) => console.log(`[loadtest] ${msg}`);

// ---------------------------------------------------------------- images
function smoothRgb(w: number, h: number, seed: number): Uint8Array {
  // gradients and a few discs: compresses like a photo rather than like noise
  const data = new Uint8Array(w * h * 3);
  const discs = Array.from({ length: 6 }, (_, k) => ({
    x: ((seed * 37 + k * 101) % 97) / 97 * w,
    y: ((seed * 53 + k * 67) % 89) / 89 * h,
    r: (0.08 + ((k * 13 + seed) % 7) / 30) * Math.min(w, h),
    c: [(k * 71 + seed * 11) % 256, (k * 29 + seed * 5) % 256, (k * 113 + seed * 3) % 256] as [number, number, number],
  }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let c: [number, number, number] = [(x * 255) / w, (y * 255) / h, ((x + y) * 127) / (w + h)];
      for (const d of discs) if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r ** 2) c = d.c;
      const i = 3 * (y * w + x);
      data[i] = c[0];
      data[i + 1] = c[1];
      data[i + 2] = c[2];
    }
  }
  return data;
}
function toJpeg(w: number, h: number, rgb: Uint8Array, quality = 85): Buffer {
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba[4 * i] = rgb[3 * i]!;
    rgba[4 * i + 1] = rgb[3 * i + 1]!;
    rgba[4 * i + 2] = rgb[3 * i + 2]!;
    rgba[4 * i + 3] = 255;
  }
  return Buffer.from(jpeg.encode({ width: w, height: h, data: rgba }, quality).data);
}

interface Image {
  name: string;
  type: string;
  body: Buffer;
}

function images(): Image[] {
  const out: Image[] = [];
  const tv = JSON.parse(readFileSync(join(root, "models/cifar10/testvectors.json"), "utf8")) as { vectors: { name: string; contentType: string; imageBase64: string }[] };
  for (const v of tv.vectors) out.push({ name: v.name, type: v.contentType, body: Buffer.from(v.imageBase64, "base64") });
  for (const [w, h, seed] of [
    [96, 96, 1],
    [224, 224, 2],
  ] as const) {
    out.push({ name: `png-${w}x${h}`, type: "image/png", body: Buffer.from(encodePng({ width: w, height: h, data: smoothRgb(w, h, seed), channels: 3, depth: 8 })) });
  }
  for (const [w, h, seed] of [
    [224, 224, 3],
    [640, 480, 4],
  ] as const) {
    out.push({ name: `jpeg-${w}x${h}`, type: "image/jpeg", body: toJpeg(w, h, smoothRgb(w, h, seed)) });
  }
  return out;
}

// ---------------------------------------------------------------- server
function snapshot() {
  const tree = join(outDir, "tree");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, "test"), { recursive: true }); // gen-model-registry writes test/models.generated.ts
  for (const p of ["workers", "shared", "cloud", "scripts", "models", "wrangler.toml", "package.json", "tsconfig.base.json", ".dev.vars"]) {
    if (existsSync(join(root, p))) cpSync(join(root, p), join(tree, p), { recursive: true, filter: (src) => !src.endsWith(".generated.ts") });
  }
  symlinkSync(join(root, "node_modules"), join(tree, "node_modules"), "dir");
  return tree;
}

/** Processes using the CPU besides this run (the machine is shared). */
function backgroundLoad(exclude: Set<number>): { pid: number; cpuPercent: number; command: string }[] {
  const r = spawnSync("ps", ["-eo", "pid=,pcpu=,comm="], { encoding: "utf8" });
  if (r.status !== 0) return [];
  return r.stdout
    .split("\n")
    .map((l) => /^\s*(\d+)\s+([\d.]+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && !exclude.has(Number(m[1])) && Number(m[2]) >= 5)
    .map((m) => ({ pid: Number(m[1]), cpuPercent: Number(m[2]), command: m[3]!.trim() }))
    .sort((a, b) => b.cpuPercent - a.cpuPercent)
    .slice(0, 8);
}

let server: NodeProcess | undefined;
let serverPid: number | undefined;
async function startServer(cwd: string): Promise<void> {
  const logFile = createWriteStream(join(outDir, "server.log"));
  server = await spawnStart({
    cwd,
    edgePort,
    cloudPort,
    tee: logFile,
    timeoutMs: 240_000,
    timeoutMessage: `npm start was not ready in 240 s (see ${join(outDir, "server.log")})`,
  });
  serverPid = server.pid;
}
async function stopServer(): Promise<void> {
  // SIGINT, as Ctrl-C would; start.ts stops both halves; give up waiting after 10 s
  await server?.stop({ signal: "SIGINT", forceAfterMs: null, giveUpAfterMs: 10_000 });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, async () => {
    await stopServer();
    process.exit(130);
  });
}

// ---------------------------------------------------------------- load
interface Counters {
  edge: number;
  cloud: number;
  degraded: number;
  unparsable: number;
  failures: Record<string, number>;
}

function requestsFor(pool: Image[], counters?: Counters): CannonRequest[] {
  const queries = opt("queries", ",threshold=0")
    .split(",")
    .map((q) => (q ? `?${q}` : ""));
  const reqs: CannonRequest[] = [];
  for (const img of pool) {
    for (const q of queries) {
      reqs.push({
        method: "POST",
        path: `/v1/classify${q}`,
        headers: { "content-type": img.type },
        body: img.body,
        onResponse: (status, body) => {
          if (!counters) return;
          if (status !== 200) {
            // keep what the failures said (who answered: the Worker's JSON envelope, or the dev server)
            const key = `${status} ${String(body).slice(0, 160)}`;
            counters.failures[key] = (counters.failures[key] ?? 0) + 1;
            return;
          }
          try {
            const r = JSON.parse(body) as { exit: { at: "edge" | "cloud" }; degraded?: boolean };
            counters[r.exit.at] = (counters[r.exit.at] ?? 0) + 1;
            if (r.degraded) counters.degraded++;
          } catch {
            counters.unparsable++;
          }
        },
      });
    }
  }
  // a fixed shuffle, so that consecutive requests of one client differ and runs are comparable
  let s = 42;
  for (let i = reqs.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [reqs[i], reqs[j]] = [reqs[j]!, reqs[i]!];
  }
  return reqs;
}

function run(opts: CannonOptions): Promise<CannonResult> {
  return new Promise((res, rej) => {
    const inst = autocannon(opts, (err, result) => (err ? rej(err) : res(result)));
    autocannon.track(inst, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false });
  });
}

async function main() {
  const only = opt("only"); // e.g. --only png-32x32 (a subset of the images, for diagnosis)
  const pool = images().filter((p) => !only || only.split(",").some((o) => p.name.includes(o)));
  log(`${pool.length} images: ${pool.map((p) => `${p.name} (${(p.body.length / 1024).toFixed(1)} KiB)`).join(", ")}`);
  const loadBefore = os.loadavg();
  log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")}`);
  if (!opt("url")) {
    const cwd = args.includes("--in-place") ? root : (opt("tree") ?? snapshot());
    log(`starting npm start (scripts/start.ts) in ${cwd} on edge :${edgePort}, cloud :${cloudPort}; server output in .loadtest/server.log`);
    await startServer(cwd);
  }
  const idle = stackMemory(serverPid);
  log(`ready; memory idle: ${JSON.stringify(idle)}`);

  if (warmup > 0) {
    log(`warm-up: ${connections} connections for ${warmup} s`);
    await run({ url: target, connections, duration: warmup, requests: requestsFor(pool), timeout: 30 });
  }
  const start = stackMemory(serverPid);
  log(`memory at start (after warm-up): ${JSON.stringify(start)}`);

  const counters: Counters = { edge: 0, cloud: 0, degraded: 0, unparsable: 0, failures: {} };
  const samples: ({ t: number } & StackMemory)[] = [];
  const sampler = setInterval(() => {
    const m = stackMemory(serverPid);
    if (m) samples.push({ t: samples.length * 5 + 5, ...m });
  }, 5000);
  log(`load: ${connections} connections for ${duration} s`);
  const result = await run({ url: target, connections, duration, requests: requestsFor(pool, counters), timeout: 30 });
  clearInterval(sampler);
  const end = stackMemory(serverPid);
  const loadAfter = os.loadavg();
  const mine = new Set([process.pid, ...(serverPid ? [serverPid, ...descendants(serverPid).map((p) => p.pid)] : [])]);
  const background = backgroundLoad(mine);

  const errors = result.errors + result.timeouts + result.non2xx;
  const growth = (k: keyof StackMemory) => {
    const a = start?.[k];
    const b = end?.[k];
    return a && b ? Math.round(((b - a) / a) * 1000) / 10 : null;
  };
  const summary = {
    date: new Date().toISOString(),
    command: `npm run loadtest -- --duration ${duration} --connections ${connections} --warmup ${warmup}`,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    loadAverage: { before: loadBefore, after: loadAfter },
    backgroundProcesses: background,
    images: pool.map((p) => ({ name: p.name, bytes: p.body.length })),
    requests: result.requests.total,
    throughputRps: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    errors: { total: errors, non2xx: result.non2xx, connection: result.errors, timeouts: result.timeouts },
    statusCodes: result.statusCodeStats,
    exits: counters,
    memoryMiB: {
      idle,
      start,
      end,
      growthPercent: { cloud: growth("cloudMiB"), workerd: growth("workerdMiB"), workerdProxy: growth("workerdProxyMiB"), wrangler: growth("wranglerMiB") },
      samples,
    },
  };
  writeFileSync(outFile, JSON.stringify(summary, null, 2));

  console.log("");
  console.log(`  requests      ${summary.requests} in ${duration} s, ${connections} connections`);
  console.log(`  throughput    ${summary.throughputRps.toFixed(1)} req/s`);
  console.log(`  latency       p50 ${summary.latencyMs.p50} ms, p90 ${summary.latencyMs.p90} ms, p99 ${summary.latencyMs.p99} ms, max ${summary.latencyMs.max} ms`);
  console.log(`  errors        ${errors} (non-2xx ${result.non2xx}, connection ${result.errors}, timeouts ${result.timeouts})`);
  console.log(`  answered at   edge ${counters.edge}, cloud ${counters.cloud}; degraded ${counters.degraded}`);
  for (const [what, n] of Object.entries(counters.failures)) console.log(`  failed ${n}x   ${what}`);
  if (start && end) {
    console.log(`  memory (RSS)  cloud ${start.cloudMiB} -> ${end.cloudMiB} MiB (${growth("cloudMiB")}%), workerd ${start.workerdMiB} -> ${end.workerdMiB} MiB (${growth("workerdMiB")}%)`);
    console.log(`                dev server: ProxyWorker workerd ${start.workerdProxyMiB} -> ${end.workerdProxyMiB} MiB, wrangler ${start.wranglerMiB} -> ${end.wranglerMiB} MiB`);
    console.log(`                idle before warm-up: cloud ${idle?.cloudMiB} MiB, workerd ${idle?.workerdMiB} MiB`);
  }
  console.log(`  load average  before ${loadBefore.map((x) => x.toFixed(2)).join(" ")}, after ${loadAfter.map((x) => x.toFixed(2)).join(" ")}`);
  if (background.length) console.log(`  background    ${background.map((b) => `${b.command} ${b.cpuPercent}%`).join(", ")} (ps %CPU, lifetime average)`);
  console.log(`  written to    ${outFile}`);
  return errors;
}

let code = 0;
try {
  code = (await main()) > 0 ? 1 : 0;
} catch (e) {
  console.error(`[loadtest] ${(e as Error).message}`);
  code = 2;
} finally {
  await stopServer();
}
process.exit(code);
