/**
 * workerd's peak memory under the OIP JSON bodies the Worker refuses before reading them whole
 * (413 once the JSON budget or MAX_BODY_BYTES is spent, 400 past the nesting limit), with no
 * ProxyWorker in front of it.
 *
 * memory.test.ts measures the stack as `npm start` runs it, but wrangler dev's ProxyWorker turns
 * an answer given while the request body is still uploading into its own 503 "Your worker
 * restarted mid-request" (and fails the next requests on that connection), so those bodies
 * could not be measured there. Here the same Worker runs in a workerd of its own, started with
 * Miniflare's API (what wrangler dev uses underneath): the bundle `wrangler deploy` would upload
 * (`--dry-run --outdir`), the bindings wrangler computes from wrangler.toml
 * (unstable_getMiniflareWorkerOptions), and the vars and secret the e2e stack gives its Worker,
 * pointed at the stack's cloud. Each body is posted over a raw socket (below), and the workerd
 * process's peak (VmHWM, reset just before) may rise by less than 64 MiB over its resident
 * memory before the request, as in memory.test.ts.
 *
 * Linux only (/proc); the e2e project runs on Linux in CI.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { descendants, isWorkerd, residentKiB, resetPeak } from "../../scripts/lib/processes.js";
import { TEST_SECRET } from "../cloud-server.js";
import { base64ToBytes, vectorsFor } from "../shared/fixtures.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PEAK_BUDGET_MIB = 64;
/** attempts per body: a refused body's answer can be lost to a TCP reset (see rawPost) */
const ATTEMPTS = 3;

let mf: Miniflare | undefined;
let origin = "";
let workerdPid = 0;
/** workerd's resident memory once warm (KiB), for the printout */
let warmRssKiB = 0;
const outdir = mkdtempSync(join(tmpdir(), "fogline-bundle-"));

/** The bundle's files as Miniflare modules, the entry first (wrangler's [[rules]] and defaults). */
function bundleModules(dir: string): NonNullable<Extract<WorkerOptions, { modules: unknown[] }>["modules"]> {
  const typeOf = (f: string) =>
    f === "index.js" ? ("ESModule" as const) : f.endsWith(".wasm") ? ("CompiledWasm" as const) : /\.(onnx|bin)$/.test(f) ? ("Data" as const) : f.endsWith(".html") ? ("Text" as const) : undefined;
  const files = readdirSync(dir).filter((f) => typeOf(f) !== undefined);
  files.sort((a, b) => Number(b === "index.js") - Number(a === "index.js"));
  return files.map((f) => ({ type: typeOf(f)!, path: join(dir, f) }));
}

interface Answer {
  status: number;
  body: string;
  /** body bytes written before the answer came */
  sent: number;
}

/**
 * POST over a raw socket, the way a careful client talks to a server that may answer early:
 * headers first, then a pause (an answer from the headers alone, like a Content-Length over the
 * limit, arrives before any body), then the body in 64 KiB writes with a turn of the event loop
 * between them, stopping at the first byte of an answer. Node's fetch keeps writing into a
 * connection the server has closed, and its write error discards the answer it had received.
 * Local workerd closes a connection whose body it did not read, and the kernel then resets it;
 * now and then that still loses the answer (status 0 here), hence the attempts.
 */
function rawPost(path: string, body: Uint8Array, opts: { chunked?: boolean } = {}): Promise<Answer> {
  const { port, hostname } = new URL(origin);
  return new Promise((done) => {
    const sock = connect(Number(port), hostname);
    const received: Buffer[] = [];
    let sent = 0;
    let answered = false;
    sock.on("data", (d: Buffer) => {
      received.push(d);
      answered = true;
    });
    sock.on("error", () => {}); // a reset after the answer; what was received still counts
    sock.on("close", () => {
      const raw = Buffer.concat(received);
      const end = raw.indexOf("\r\n\r\n");
      if (end < 0) return done({ status: 0, body: "", sent });
      const head = raw.subarray(0, end).toString("latin1");
      let rest = raw.subarray(end + 4);
      if (/^transfer-encoding:\s*chunked/im.test(head)) {
        const parts: Buffer[] = [];
        for (let at = 0; ; ) {
          const eol = rest.indexOf("\r\n", at);
          const size = eol < 0 ? 0 : parseInt(rest.subarray(at, eol).toString("latin1"), 16);
          if (!size) break;
          parts.push(rest.subarray(eol + 2, eol + 2 + size));
          at = eol + 2 + size + 2;
        }
        rest = Buffer.concat(parts);
      }
      done({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body: rest.toString("utf8"), sent });
    });
    const length = opts.chunked ? "transfer-encoding: chunked" : `content-length: ${body.length}`;
    sock.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\n${length}\r\nconnection: close\r\n\r\n`);
    void (async () => {
      for (let t = 0; t < 20 && !answered; t++) await new Promise((r) => setTimeout(r, 25));
      while (!answered && !sock.destroyed && sent < body.length) {
        const chunk = body.subarray(sent, sent + 65536);
        sent += chunk.length;
        const framed = opts.chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]) : chunk;
        const ok = sock.write(framed);
        await new Promise((r) => (ok ? setImmediate(r) : sock.once("drain", r)));
      }
      if (!answered && !sock.destroyed && opts.chunked) sock.write("0\r\n\r\n");
    })();
  });
}

const N = 64 * 3 * 32 * 32; // the largest legal batch of the shipped 32x32 models (MAX_BATCH 64)
const head = `{"inputs":[{"name":"image","datatype":"FP32","shape":[64,3,32,32],"data":[`;
const tail = `]}],"parameters":{"exit":"edge"}}`;
const enc = (s: string) => new TextEncoder().encode(s);

/** The bodies test/workers/oip.test.ts sees refused mid-stream, and the two MAX_BODY_BYTES ones. */
const REFUSED: { name: string; body: () => Uint8Array; chunked?: boolean; status: number; code: string }[] = [
  { name: "a 5 MB request of short numbers (more values than the largest batch)", body: () => enc(head + Array(1_250_000).fill("0.5").join(",") + tail), status: 413, code: "payload_too_large" },
  { name: "a batch of 64 written with 40-character numbers (over the structure bytes)", body: () => enc(head + Array(N).fill("0.100000000000000000000000000000000000001").join(",") + tail), status: 413, code: "payload_too_large" },
  { name: "1.5 M empty arrays", body: () => enc(head + Array(1_500_000).fill("[]").join(",") + tail), status: 413, code: "payload_too_large" },
  { name: "1.5 M empty objects in the envelope", body: () => enc(`{"inputs":[],"junk":[${Array(1_500_000).fill("{}").join(",")}]}`), status: 413, code: "payload_too_large" },
  { name: "JSON nested 100,000 deep", body: () => enc(`{"inputs":${"[".repeat(100_000)}`), status: 400, code: "invalid_input" },
  { name: "a 13 MB Content-Length (over MAX_BODY_BYTES)", body: () => enc(head + Array(2_000_000).fill("0.5").join(",") + tail + " ".repeat(5_000_000)), status: 413, code: "payload_too_large" },
  {
    name: "an 11 MB string, chunked, no Content-Length (over MAX_BODY_BYTES while streaming)",
    body: () => enc(`{"inputs":[{"name":"image_bytes","datatype":"BYTES","shape":[1],"data":["${"A".repeat(11 * 2 ** 20)}"]}]}`),
    chunked: true,
    status: 413,
    code: "payload_too_large",
  },
];

beforeAll(async () => {
  // the bundle `wrangler deploy` would upload (its deploy check only reports under --dry-run)
  const build = spawnSync(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
  });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  mf = new Miniflare({
    ...(workerOptions as WorkerOptions),
    name: "fogline-edge",
    modulesRoot: outdir,
    modules: bundleModules(outdir),
    // what scripts/start.ts gives the stack's Worker (and its secret), pointed at the stack's cloud
    bindings: {
      ...workerOptions.bindings,
      CLOUD_URL: inject("cloudUrl"),
      DEV_CLOSE_CONNECTIONS: "true",
      FOGLINE_HMAC_SECRET: TEST_SECRET,
      LOG_LEVEL: "warn",
    },
    host: "127.0.0.1",
    port: 0,
    cf: false, // no request.cf download (no network in CI)
    log: new Log(LogLevel.WARN),
  });
  origin = (await mf.ready).origin;
  const rows = descendants(process.pid).filter(isWorkerd);
  expect(rows, "Miniflare's workerd process").toHaveLength(1);
  workerdPid = rows[0]!.pid;

  // warm: both models' engines loaded, both exits taken, the largest legal OIP body parsed twice
  for (const model of ["cifar10", "cifar100"]) {
    for (const v of vectorsFor(model).vectors.slice(0, 3)) {
      for (const q of ["", "&threshold=0"]) {
        const res = await fetch(`${origin}/v1/classify?model=${model}${q}`, { method: "POST", body: base64ToBytes(v.imageBase64), headers: { "content-type": v.contentType } });
        const json = (await res.json()) as { degraded?: boolean };
        expect(res.status).toBe(200);
        expect(json.degraded ?? false).toBe(false);
      }
    }
  }
  const value = (i: number) => (((i * 7919) % 2001) / 1000 - 1).toFixed(17);
  const legal = enc(head + Array.from({ length: N }, (_, i) => value(i)).join(",") + tail);
  for (let i = 0; i < 2; i++) expect((await rawPost("/v2/models/cifar10/infer", legal)).status).toBe(200);
  warmRssKiB = residentKiB(workerdPid).rss;
}, 240_000);

afterAll(async () => {
  await mf?.dispose();
  rmSync(outdir, { recursive: true, force: true });
});

describe("workerd's peak memory under OIP JSON bodies refused mid-stream (Miniflare, no ProxyWorker)", () => {
  const lines: string[] = [];
  for (const c of REFUSED) {
    it(`${c.name}: ${c.status} ${c.code}, peak rise < ${PEAK_BUDGET_MIB} MiB`, async () => {
      const body = c.body();
      let answer: Answer | undefined;
      let worstMiB = -Infinity;
      let lost = 0;
      for (let attempt = 0; attempt < ATTEMPTS && !answer; attempt++) {
        resetPeak(workerdPid);
        const before = residentKiB(workerdPid).rss;
        const a = await rawPost("/v2/models/cifar10/infer", body, { chunked: c.chunked });
        worstMiB = Math.max(worstMiB, (residentKiB(workerdPid).peak - before) / 1024);
        if (a.status === 0) lost++;
        else answer = a;
      }
      lines.push(
        `${worstMiB.toFixed(1).padStart(6)} MiB  ${answer?.status ?? "-"}  ${(body.length / 2 ** 20).toFixed(1)} MiB body, ${((answer?.sent ?? 0) / 2 ** 20).toFixed(1)} MiB sent  ${c.name}${lost ? ` (${lost} answer(s) lost to a reset)` : ""}`,
      );
      expect(answer, `no answer in ${ATTEMPTS} attempts`).toBeDefined();
      expect(answer!.status, answer!.body).toBe(c.status);
      expect((JSON.parse(answer!.body) as { code?: string }).code).toBe(c.code);
      expect(worstMiB).toBeLessThan(PEAK_BUDGET_MIB);
    }, 120_000);
  }
  it("prints the measured rises", () => {
    console.log(`workerd (Miniflare; ${(warmRssKiB / 1024).toFixed(0)} MiB resident when warm) peak rise per refused OIP body (VmHWM after - VmRSS before; worst attempt):\n${lines.join("\n")}`);
    expect(lines.length).toBe(REFUSED.length);
  });
});
