/**
 * The edge->cloud path under failure, in workerd with real cloud processes (test/outage.ts): a
 * cloud killed mid-run and restarted, a cloud slower than the timeout (timed by a clock outside
 * workerd, whose own clock stands still during CPU work: docs/runtime.md#workerds-clock), the request id that
 * travels to the cloud, and the edge's /metrics. Shares the isolate (and ORT) with edge.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { ClassifyResponse } from "../../workers/src/schemas/classify.js";
import { ErrorResponse } from "@fogline/shared/errors";
import { app } from "../../workers/src/app.js";
import type { Bindings } from "../../workers/src/env.js";
import { base64ToBytes, DEFAULT_MODEL, vectorsFor } from "../shared/fixtures.js";

const png32 = base64ToBytes(vectorsFor(DEFAULT_MODEL).vectors[0]!.imageBase64);
const control = (path: string) => `http://127.0.0.1:${inject("controlPort")}${path}`;

interface Call {
  query?: Record<string, string>;
  env?: Partial<Bindings>;
  headers?: Record<string, string>;
}

function classify(o: Call = {}): Promise<Response> {
  const qs = new URLSearchParams(o.query ?? {}).toString();
  return Promise.resolve(
    app.request(
      `/v1/classify${qs ? `?${qs}` : ""}`,
      { method: "POST", headers: { "content-type": "image/png", ...o.headers }, body: png32 },
      { ...env, ...o.env },
    ),
  );
}

async function classifyOk(o: Call = {}): Promise<ClassifyResponse> {
  const res = await classify(o);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return ClassifyResponse.parse(JSON.parse(text));
}

/** Milliseconds on the Node side's clock: real time, whatever workerd's clock does. */
async function outsideClock(): Promise<number> {
  return ((await (await fetch(control("/clock"))).json()) as { ms: number }).ms;
}

async function post(path: string): Promise<void> {
  const res = await fetch(control(path), { method: "POST" });
  expect(res.status, await res.text()).toBe(200);
}

/** A pause served by the Node side (test/outage.ts explains why not setTimeout). */
const sleep = async (ms: number) => void (await (await fetch(control(`/sleep/${ms}`))).text());

async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("edge->cloud outages", () => {
  it("degrades exit=auto answers while the cloud is killed mid-run, and recovers when it returns", async () => {
    // LOG_LEVEL error: the warning of each degraded answer would bury the test output
    const killable = { CLOUD_URL: `http://127.0.0.1:${inject("killableCloudPort")}`, LOG_LEVEL: "error" };
    type Phase = "up" | "killing" | "down" | "restarting" | "back";
    let phase: Phase = "up";
    const seen: Array<{ started: Phase; status: number; degraded?: boolean; reason?: string }> = [];
    let stop = false;
    // a steady stream of cloud-bound requests (threshold 0: nothing exits at the edge), 4 in flight
    const client = async () => {
      while (!stop) {
        const started = phase;
        const res = await classify({ query: { threshold: "0" }, env: killable });
        const text = await res.text();
        const body = res.status === 200 ? ClassifyResponse.parse(JSON.parse(text)) : undefined;
        seen.push({ started, status: res.status, degraded: body?.degraded, reason: body?.degradedReason });
        await sleep(5);
      }
    };
    const clients = [client(), client(), client(), client()];
    try {
      await until("answers from the live cloud", () => seen.filter((s) => s.started === "up" && s.degraded === false).length >= 8);
      phase = "killing";
      await post("/cloud/kill"); // SIGKILL, returns once the process is gone
      phase = "down";
      await until("degraded answers", () => seen.filter((s) => s.started === "down").length >= 12);
      phase = "restarting";
      await post("/cloud/start"); // same port; returns once it listens
      phase = "back";
      await until("answers from the restarted cloud", () => seen.filter((s) => s.started === "back").length >= 12);
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    // never an error: every request got 200, in-flight ones included
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    const down = seen.filter((s) => s.started === "down");
    expect(down.every((s) => s.degraded === true)).toBe(true);
    expect(down.every((s) => s.reason === "cloud_unreachable")).toBe(true);
    expect(seen.filter((s) => s.started === "back").every((s) => s.degraded === false)).toBe(true);
  }, 120_000);

  describe("a cloud slower than the timeout", () => {
    // The margin covers the edge inference and the clock calls on a loaded 2-core machine (a run
    // beside two training jobs took 1204 ms for the 1000 ms timeout); the slow cloud answers
    // 1500 ms after the timeout, so a timeout that is not enforced still fails by a wide margin.
    it.each([
      [1000, "CLOUD_TIMEOUT_MS=1000"],
      [2000, "the default 2 s"],
    ])("degrades exit=auto within %i ms + 500 ms (%s), timed outside workerd", async (timeoutMs) => {
      await classifyOk({ query: { exit: "edge" } }); // ORT warm
      const slow = {
        CLOUD_URL: `http://127.0.0.1:${inject("slowCloudPort")}/delay/${timeoutMs + 1500}`,
        ...(timeoutMs !== 2000 && { CLOUD_TIMEOUT_MS: String(timeoutMs) }),
      };
      const t0 = await outsideClock();
      const res = await classify({ query: { threshold: "0" }, env: slow });
      const t1 = await outsideClock();
      const body = ClassifyResponse.parse(await res.json());
      expect(body).toMatchObject({ degraded: true, exit: { at: "edge" } });
      expect(body.degradedReason).toBe("cloud_timeout");
      expect(t1 - t0).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(t1 - t0).toBeLessThan(timeoutMs + 500);
    });

    it("answers exit=cloud with 503 cloud_unavailable within the timeout + 500 ms", async () => {
      const slow = { CLOUD_URL: `http://127.0.0.1:${inject("slowCloudPort")}/delay/2500`, CLOUD_TIMEOUT_MS: "1000" };
      const t0 = await outsideClock();
      const res = await classify({ query: { exit: "cloud" }, env: slow });
      const t1 = await outsideClock();
      expect(res.status).toBe(503);
      expect(ErrorResponse.parse(await res.json()).error.code).toBe("cloud_unavailable");
      expect(t1 - t0).toBeLessThan(1500);
    });

    it("still waits for a cloud that is slow but within the timeout", async () => {
      const r = await classifyOk({ query: { exit: "cloud" }, env: { CLOUD_URL: `http://127.0.0.1:${inject("slowCloudPort")}/delay/300` } });
      expect(r).toMatchObject({ degraded: false, exit: { at: "cloud" } });
      expect(r.timings.cloudMs).toBeGreaterThanOrEqual(300);
    });
  });
});

describe("request ids", () => {
  it("passes the request id to the cloud and echoes it to the client", async () => {
    const res = await classify({
      query: { exit: "cloud" },
      env: { CLOUD_URL: `http://127.0.0.1:${inject("slowCloudPort")}/delay/0` },
      headers: { "x-request-id": "client-req-42" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("client-req-42");
    const last = (await (await fetch(control("/slow/last"))).json()) as { requestId: string };
    expect(last.requestId).toBe("client-req-42");
  });

  it("makes one when the client sends none, and echoes it on errors too", async () => {
    const res = await app.request("/v1/classify", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }, env);
    expect(res.status).toBe(415);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("npm start's DEV_CLOSE_CONNECTIONS (workers/src/dev.ts)", () => {
  it("asks to close the connection after every response only when set", async () => {
    const on = await classify({ query: { exit: "edge" }, env: { DEV_CLOSE_CONNECTIONS: "true" } });
    expect(on.headers.get("connection")).toBe("close");
    const err = await app.request("/nope", {}, { ...env, DEV_CLOSE_CONNECTIONS: "true" });
    expect(err.status).toBe(404);
    expect(err.headers.get("connection")).toBe("close");
    expect((await classify({ query: { exit: "edge" } })).headers.get("connection")).toBeNull();
  });
});

describe("GET /metrics (edge)", () => {
  const scrape = async (bindings: Partial<Bindings> = {}, headers: Record<string, string> = {}) =>
    app.request("/metrics", { headers }, { ...env, ...bindings });

  it("exports requests by route and status, exits by point, degraded answers, cloud call latency and errors", async () => {
    await classifyOk({ query: { exit: "edge" } });
    await classifyOk({ query: { exit: "cloud" } });
    await classifyOk({ query: { threshold: "0" }, env: { CLOUD_URL: `http://127.0.0.1:${inject("closedPort")}` } });
    await app.request("/v1/classify", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }, env);
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const m = DEFAULT_MODEL;
    for (const line of [
      /^fogline_http_requests_total\{route="\/v1\/classify",method="POST",status="200"\} [1-9]\d*$/m,
      /^fogline_http_requests_total\{route="\/v1\/classify",method="POST",status="415"\} [1-9]\d*$/m,
      /^fogline_http_errors_total\{code="unsupported_media_type"\} [1-9]\d*$/m,
      new RegExp(`^fogline_exits_total\\{model="${m}",at="edge"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_exits_total\\{model="${m}",at="cloud"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_degraded_total\\{model="${m}",reason="unreachable"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_cloud_calls_total\\{model="${m}",outcome="ok"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_cloud_calls_total\\{model="${m}",outcome="unreachable"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_cloud_retries_total\\{model="${m}"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_cloud_call_duration_seconds_count\\{model="${m}"\\} [1-9]\\d*$`, "m"),
      new RegExp(`^fogline_inference_duration_seconds_count\\{model="${m}",stage="edge"\\} [1-9]\\d*$`, "m"),
      /^fogline_http_request_duration_seconds_bucket\{route="\/v1\/classify",le="\+Inf"\} [1-9]\d*$/m,
    ]) {
      expect(text).toMatch(line);
    }
  });

  it("needs the bearer token when METRICS_TOKEN is set", async () => {
    const guarded = { METRICS_TOKEN: "edge-scraper" };
    expect((await scrape(guarded)).status).toBe(401);
    expect((await scrape(guarded, { authorization: "Bearer nope" })).status).toBe(401);
    expect((await scrape(guarded, { authorization: "Bearer edge-scraper" })).status).toBe(200);
  });
});
