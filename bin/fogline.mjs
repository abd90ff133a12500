#!/usr/bin/env node
// @ts-check
/**
 * fogline: a small client of a Fogline edge (plain Node >= 20, no dependencies).
 *   npx fogline classify <image...> [--url URL] [--model NAME] [--threshold T] [--exit auto|edge|cloud] [--json]
 *   npx fogline models [--url URL] [--json]
 *   npx fogline bench <image...> [-n 100] [-c 4] [--url URL] [--model NAME] [--threshold T] [--exit MODE] [--json]
 * The edge URL: --url, else $FOGLINE_URL, else http://127.0.0.1:8787 (`npm start`).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

const DEFAULT_URL = "http://127.0.0.1:8787";

const HELP = `fogline: classify images with a Fogline edge (early exit at the edge, the rest in the cloud)

Usage:
  fogline classify <image...>   label, score and exit point per PNG/JPEG file
  fogline models                the models the edge serves
  fogline bench <image...>      latency percentiles and edge share over repeated requests

Options:
  --url URL          edge base URL (default: $FOGLINE_URL or ${DEFAULT_URL})
  --model NAME       model (default: the edge's default, cifar10)
  --threshold T      entropy threshold for these requests (default: the calibrated one)
  --exit MODE        auto | edge | cloud (default: auto)
  --json             machine-readable output
  -n, --requests N   bench: number of requests (default 100)
  -c, --concurrency C  bench: requests in flight (default 4)
  -h, --help         this help
  -v, --version      the CLI's version

Exit status: 0 when every file was classified, 1 when any failed, 2 for a usage error.`;

class UsageError extends Error {}

/** @param {string[]} argv */
function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      model: { type: "string" },
      threshold: { type: "string" },
      exit: { type: "string" },
      json: { type: "boolean", default: false },
      requests: { type: "string", short: "n" },
      concurrency: { type: "string", short: "c" },
      help: { type: "boolean", short: "h", default: false },
      version: { type: "boolean", short: "v", default: false },
    },
  });
  if (values.exit !== undefined && !["auto", "edge", "cloud"].includes(values.exit)) throw new UsageError(`--exit must be auto, edge or cloud, not "${values.exit}"`);
  if (values.threshold !== undefined && !(Number(values.threshold) >= 0)) throw new UsageError(`--threshold must be a number >= 0, not "${values.threshold}"`);
  const url = (values.url ?? process.env.FOGLINE_URL ?? DEFAULT_URL).replace(/\/+$/, "");
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must start with http:// or https://, not "${url}"`);
  return { values, positionals, url };
}

/** @param {Uint8Array} b */
function sniff(b) {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "image/png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  return null;
}

/**
 * @param {string} url
 * @param {{ model?: string, threshold?: string, exit?: string }} q
 */
function classifyUrl(url, q) {
  const params = new URLSearchParams();
  if (q.model) params.set("model", q.model);
  if (q.threshold !== undefined) params.set("threshold", q.threshold);
  if (q.exit) params.set("exit", q.exit);
  const qs = params.toString();
  return `${url}/v1/classify${qs ? `?${qs}` : ""}`;
}

/**
 * One file through POST /v1/classify: the response body, or `{ error: { code, message } }`.
 * @param {string} endpoint
 * @param {string} file
 * @param {Uint8Array} [bytes]
 * @returns {Promise<Record<string, any>>}
 */
async function classifyFile(endpoint, file, bytes) {
  let body = bytes;
  if (!body) {
    try {
      body = new Uint8Array(readFileSync(file));
    } catch (e) {
      return { error: { code: "file_unreadable", message: /** @type {Error} */ (e).message } };
    }
  }
  const type = sniff(body);
  if (!type) return { error: { code: "not_an_image", message: "not a PNG or JPEG file" } };
  let res;
  try {
    res = await fetch(endpoint, { method: "POST", headers: { "content-type": type }, body: /** @type {BodyInit} */ (body) });
  } catch (e) {
    const cause = /** @type {any} */ (e).cause;
    return { error: { code: "unreachable", message: `${endpoint}: ${cause?.code ?? cause?.message ?? /** @type {Error} */ (e).message}` } };
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: { code: `http_${res.status}`, message: text.slice(0, 200) } };
  }
  if (!res.ok) return json?.error ? json : { error: { code: `http_${res.status}`, message: text.slice(0, 200) } };
  return json;
}

/** @param {string[][]} rows */
function table(rows) {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")).join("\n");
}

/** @param {ReturnType<typeof parse>} a */
async function classifyCmd(a) {
  if (a.positionals.length === 0) throw new UsageError("classify needs at least one image file");
  const endpoint = classifyUrl(a.url, a.values);
  /** @type {Array<Record<string, any>>} */
  const results = [];
  for (const file of a.positionals) results.push({ file, ...(await classifyFile(endpoint, file)) });
  if (a.values.json) {
    console.log(JSON.stringify(results, null, 2));
  } else {
    const rows = [["file", "label", "score", "exit", "ood", "entropy/threshold"]];
    for (const r of results) {
      if (r.error) rows.push([r.file, "error", "", "", "", `${r.error.code}: ${r.error.message}`]);
      else {
        const exit = r.exit.at + (r.degraded ? " (degraded)" : "");
        // docs/ood.md: "yes" = probably none of the model's classes; "-" = the model has no calibration
        const ood = r.ood ? (r.ood.flagged ? "yes" : "no") : "-";
        rows.push([r.file, r.label, r.score.toFixed(3), exit, ood, `${r.exit.entropy.toFixed(3)}/${r.exit.threshold.toFixed(3)}`]);
      }
    }
    console.log(table(rows));
  }
  return results.some((r) => r.error) ? 1 : 0;
}

/** @param {ReturnType<typeof parse>} a */
async function modelsCmd(a) {
  const res = await fetch(`${a.url}/v1/models`);
  const body = await res.json();
  if (!res.ok) throw new Error(`${a.url}/v1/models: HTTP ${res.status} ${JSON.stringify(body)}`);
  if (a.values.json) console.log(JSON.stringify(body, null, 2));
  else {
    const rows = [["name", "version", "classes", "threshold", "split"]];
    for (const m of body.models) rows.push([m.name, m.version, String(m.labels.length), m.exit.threshold.toFixed(3), m.split.shape.join("x")]);
    console.log(table(rows));
  }
  return 0;
}

/** @param {number[]} sorted @param {number} p */
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

/** @param {ReturnType<typeof parse>} a */
async function benchCmd(a) {
  if (a.positionals.length === 0) throw new UsageError("bench needs at least one image file");
  const n = Number(a.values.requests ?? 100);
  const concurrency = Number(a.values.concurrency ?? 4);
  if (!(Number.isInteger(n) && n > 0) || !(Number.isInteger(concurrency) && concurrency > 0)) throw new UsageError("-n and -c must be positive integers");
  const files = a.positionals.map((f) => ({ file: f, bytes: new Uint8Array(readFileSync(f)) }));
  const endpoint = classifyUrl(a.url, a.values);
  // one warm-up request per file: the first answer of an isolate includes ORT start-up
  for (const f of files) await classifyFile(endpoint, f.file, f.bytes);
  /** @type {number[]} */
  const latencies = [];
  let edge = 0;
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const f = files[next++ % files.length];
        if (!f) break;
        const t0 = performance.now();
        const r = await classifyFile(endpoint, f.file, f.bytes);
        latencies.push(performance.now() - t0);
        if (r.error) errors++;
        else if (r.exit.at === "edge") edge++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((x, y) => x - y);
  const ms = (/** @type {number} */ x) => Math.round(x * 10) / 10;
  const report = {
    requests: n,
    concurrency,
    errors,
    edgeShare: (n - errors) > 0 ? edge / (n - errors) : 0,
    throughputPerS: Math.round((n / seconds) * 10) / 10,
    latencyMs: { p50: ms(percentile(latencies, 50)), p90: ms(percentile(latencies, 90)), p99: ms(percentile(latencies, 99)), max: ms(latencies.at(-1) ?? NaN) },
  };
  if (a.values.json) console.log(JSON.stringify(report, null, 2));
  else {
    const l = report.latencyMs;
    console.log(
      `${n} requests, ${concurrency} in flight, ${errors} errors, ${(100 * report.edgeShare).toFixed(1)}% answered at the edge\n` +
        `${report.throughputPerS} req/s; latency ms p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`,
    );
  }
  return errors ? 1 : 0;
}

async function main() {
  const argv = process.argv.slice(2);
  let a;
  try {
    a = parse(argv);
  } catch (e) {
    console.error(`fogline: ${/** @type {Error} */ (e).message}\n\n${HELP}`);
    return 2;
  }
  if (a.values.version) {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    console.log(pkg.version);
    return 0;
  }
  const [command, ...rest] = a.positionals;
  if (a.values.help || !command) {
    console.log(HELP);
    return a.values.help ? 0 : 2;
  }
  a.positionals = rest;
  try {
    if (command === "classify") return await classifyCmd(a);
    if (command === "models") return await modelsCmd(a);
    if (command === "bench") return await benchCmd(a);
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`fogline: ${e.message}\n\n${HELP}`);
      return 2;
    }
    console.error(`fogline ${basename(command)}: ${/** @type {Error} */ (e).message}`);
    return 1;
  }
}

process.exitCode = await main();
