/**
 * Memory of the running stack (`npm start`: wrangler dev's workerd and the Node cloud), measured
 * from /proc while it answers. Local workerd has no memory cap, so an upload that would kill a
 * 128 MB Worker isolate answers normally here; these checks are what would notice:
 *
 * - the hostile-image corpus (test/hostile-images.ts) posted to the edge, workerd's peak
 *   (VmHWM, reset before each image) raised by less than 64 MiB over its resident memory;
 * - a short load run: hundreds of legal requests, edge- and cloud-answered, every one a 200, and
 *   neither process's resident memory growing beyond a bound (a leak per request would).
 *
 * Linux only (/proc); the e2e project runs on Linux in CI.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import { residentKiB, resetPeak, stackProcesses } from "../../scripts/lib/processes.js";
import { base64ToBytes, vectorsFor } from "../shared/fixtures.js";
import { HOSTILE_IMAGES } from "../hostile-images.js";

const PEAK_BUDGET_MIB = 64;
/** growth of resident memory allowed over the load run, after the warm-up (MiB) */
const GROWTH_BUDGET_MIB = { workerd: 24, cloud: 16 };
const LOAD_REQUESTS = 400;
const LOAD_CONCURRENCY = 8;

const edge = () => inject("edgeUrl");

function pidOf(part: "workerd" | "cloud"): number {
  const rows = stackProcesses(inject("stackPid"))[part];
  expect(rows, `${part} process of the stack`).toHaveLength(1);
  return rows[0]!.pid;
}

/** Legal uploads of both models, answered at the edge (calibrated threshold) and by the cloud
 * (threshold=0), PNG and JPEG. */
function legalRequests(): { path: string; body: Uint8Array<ArrayBuffer>; type: string }[] {
  const out = [];
  for (const model of ["cifar10", "cifar100"]) {
    for (const v of vectorsFor(model).vectors) {
      for (const query of ["", "&threshold=0"]) out.push({ path: `/v1/classify?model=${model}${query}`, body: base64ToBytes(v.imageBase64), type: v.contentType });
    }
  }
  return out;
}

async function post(path: string, body: Uint8Array<ArrayBuffer>, type: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${edge()}${path}`, { method: "POST", body, headers: { "content-type": type } });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: json.error?.code };
}

async function drive(n: number, concurrency: number): Promise<number[]> {
  const requests = legalRequests();
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const r = requests[next++ % requests.length]!;
      statuses.push((await post(r.path, r.body, r.type)).status);
    }
  }));
  return statuses;
}

/** the corpus's bytes, built before the warm-up (the bombs take seconds to compress; a pause
 * between requests that long lets the server close the client's kept-alive connections) */
const corpusBytes = new Map<string, Uint8Array<ArrayBuffer>>();

beforeAll(async () => {
  for (const image of HOSTILE_IMAGES) corpusBytes.set(image.name, image.bytes());
  // warm: both models loaded in workerd and the cloud, both exits taken, V8's heaps sized
  const statuses = await drive(200, LOAD_CONCURRENCY);
  expect(statuses.every((s) => s === 200)).toBe(true);
}, 180_000);

describe("workerd's peak memory under hostile images", () => {
  const rises: string[] = [];
  for (const image of HOSTILE_IMAGES) {
    it(`${image.name}: ${image.expected}, peak rise < ${PEAK_BUDGET_MIB} MiB`, async () => {
      const pid = pidOf("workerd");
      const bytes = corpusBytes.get(image.name)!;
      resetPeak(pid);
      const before = residentKiB(pid).rss;
      const answer = await post("/v1/classify?exit=edge", bytes, image.contentType);
      const riseMiB = (residentKiB(pid).peak - before) / 1024;
      rises.push(`${riseMiB.toFixed(1).padStart(6)} MiB  ${String(answer.status).padEnd(4)} ${(answer.code ?? "ok").padEnd(20)} ${image.name}`);
      expect(answer.code ?? "ok").toBe(image.expected);
      expect(riseMiB).toBeLessThan(PEAK_BUDGET_MIB);
    });
  }
  it("prints the measured rises", () => {
    console.log(`workerd peak rise per image (VmHWM after - VmRSS before):\n${rises.join("\n")}`);
    expect(rises.length).toBe(HOSTILE_IMAGES.length);
  });
});

/**
 * OIP JSON infer bodies that are read whole: the largest legal batch, the most a request can
 * make the Worker parse. The bodies refused mid-stream (413 once the structure budget or
 * MAX_BODY_BYTES is spent, 400 past the nesting limit) are measured in memory-refused.test.ts,
 * in a workerd started without wrangler dev: here its ProxyWorker, in front of the Worker, turns
 * an answer sent before the request body is consumed into a 503 "Your worker restarted
 * mid-request" and fails the requests that follow on the same connection, which a deployed
 * Worker does not do.
 */
function oipBodies(): { name: string; body: string; expected: number }[] {
  const n = 64 * 3 * 32 * 32;
  const value = (i: number) => (((i * 7919) % 2001) / 1000 - 1).toFixed(17); // 19-20 characters each
  const tensor = (data: string) => `{"inputs":[{"name":"image","datatype":"FP32","shape":[64,3,32,32],"data":[${data}]}]}`;
  const numbers = (count: number) => Array.from({ length: count }, (_, i) => value(i)).join(",");
  return [
    { name: "the largest legal FP32 batch (64 images, 17-digit numbers)", body: tensor(numbers(n)), expected: 200 },
  ];
}

describe("workerd's peak memory under OIP JSON request bombs", () => {
  for (const { name, body, expected } of oipBodies()) {
    it(`${name}: ${expected}, peak rise < ${PEAK_BUDGET_MIB} MiB`, async () => {
      const pid = pidOf("workerd");
      resetPeak(pid);
      const before = residentKiB(pid).rss;
      const res = await fetch(`${edge()}/v2/models/cifar10/infer`, { method: "POST", body, headers: { "content-type": "application/json" } });
      await res.arrayBuffer();
      const riseMiB = (residentKiB(pid).peak - before) / 1024;
      console.log(`${riseMiB.toFixed(1).padStart(6)} MiB  ${res.status}  ${name} (${(body.length / 2 ** 20).toFixed(1)} MiB)`);
      expect(res.status).toBe(expected);
      expect(riseMiB).toBeLessThan(PEAK_BUDGET_MIB);
    }, 60_000);
  }
});

describe("a short load run", () => {
  it(`${LOAD_REQUESTS} legal requests: all 200, resident memory of workerd and the cloud within bounds`, async () => {
    const pids = { workerd: pidOf("workerd"), cloud: pidOf("cloud") };
    const before = { workerd: residentKiB(pids.workerd).rss, cloud: residentKiB(pids.cloud).rss };
    const t0 = performance.now();
    const statuses = await drive(LOAD_REQUESTS, LOAD_CONCURRENCY);
    const seconds = (performance.now() - t0) / 1000;
    const growth = {
      workerd: (residentKiB(pids.workerd).rss - before.workerd) / 1024,
      cloud: (residentKiB(pids.cloud).rss - before.cloud) / 1024,
    };
    console.log(`load: ${statuses.length} requests in ${seconds.toFixed(1)} s; resident growth workerd ${growth.workerd.toFixed(1)} MiB (from ${(before.workerd / 1024).toFixed(0)}), cloud ${growth.cloud.toFixed(1)} MiB (from ${(before.cloud / 1024).toFixed(0)})`);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(growth.workerd).toBeLessThan(GROWTH_BUDGET_MIB.workerd);
    expect(growth.cloud).toBeLessThan(GROWTH_BUDGET_MIB.cloud);
  }, 180_000);
});
