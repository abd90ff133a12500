/**
 * The edge Worker in real workerd with the real onnxruntime-web WASM, talking to real Node cloud
 * servers started in test/global-setup.ts. Everything that loads ORT lives in this one file
 * (each file that does costs ~8 s).
 */
import { env } from "cloudflare:workers";
import { SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import pkg from "../../workers/package.json";
import { encodedSize } from "@fogline/shared/wire";
import { ClassifyResponse } from "../../workers/src/schemas/classify.js";
import { ErrorResponse } from "@fogline/shared/errors";
import { HealthResponse, ModelsResponse } from "@fogline/shared/schemas/models";
import { OipReady } from "../../workers/src/schemas/oip.js";
import { entropy, exitsAtEdge } from "../../workers/src/infer/entropy.js";
import { runEdge } from "@fogline/shared/runner";
import { app } from "../../workers/src/app.js";
import type { Bindings } from "../../workers/src/env.js";
import { loaderStats, ort } from "../../workers/src/infer/ort.js";
import { edgeRunner } from "../../workers/src/infer/session.js";
import { allModels, getModel } from "../../workers/src/models/registry.js";
import { clientKey } from "../../workers/src/cloud/rate-limit.js";
import { metrics } from "../../workers/src/observability.js";
import { OipErrorResponse, OipInferResponse } from "../../workers/src/schemas/oip.js";
import { argmax, base64ToBytes, DEFAULT_MODEL, makePng, maxAbsDiff, modelsWithVectors, pngHeaderOnly, vectorsFor } from "../shared/fixtures.js";

const vectors = vectorsFor(DEFAULT_MODEL);
const png32 = base64ToBytes(vectors.vectors[0]!.imageBase64);
const model = () => getModel(DEFAULT_MODEL).manifest;

interface ClassifyOverrides {
  query?: Record<string, string>;
  body?: BodyInit | null;
  contentType?: string | null;
  env?: Partial<Bindings>;
  headers?: Record<string, string>;
}

/** POST /v1/classify through the Worker's app with the test bindings (optionally overridden). */
function makeRequest(o: ClassifyOverrides = {}): Promise<Response> {
  const qs = new URLSearchParams(o.query ?? {}).toString();
  const headers: Record<string, string> = { ...o.headers };
  const contentType = o.contentType === undefined ? "image/png" : o.contentType;
  if (contentType !== null) headers["content-type"] = contentType;
  const body = o.body === undefined ? png32 : o.body;
  return Promise.resolve(app.request(`/v1/classify${qs ? `?${qs}` : ""}`, { method: "POST", headers, body }, { ...env, ...o.env }));
}

async function classifyOk(o: ClassifyOverrides = {}): Promise<ClassifyResponse> {
  const res = await makeRequest(o);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return ClassifyResponse.parse(JSON.parse(text));
}

async function expectError(res: Response, status: number, code: string) {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  // `/v2` answers the Open Inference Protocol's `{error: "<message>", code}`, the rest the envelope
  const json = JSON.parse(text);
  expect(typeof json.error === "string" ? OipErrorResponse.parse(json).code : ErrorResponse.parse(json).error.code).toBe(code);
}

const cloudAt = (port: number) => ({ CLOUD_URL: `http://127.0.0.1:${port}` });

describe("onnxruntime-web in workerd", () => {
  it("loads its WASM through the precompiled-module workaround, exactly once", async () => {
    await classifyOk({ query: { exit: "edge", engine: "ort" } });
    // A change in ORT's loader (the marker buffer no longer reaching WebAssembly.instantiate)
    // shows here as 0, or as a failed request above.
    expect(loaderStats.intercepted).toBe(1);
    await classifyOk({ query: { exit: "edge", engine: "ort" } });
    expect(loaderStats.intercepted).toBe(1);
  });

  it("is the pinned version the workaround was written for", () => {
    expect(ort.env.versions.web).toBe(pkg.dependencies["onnxruntime-web"]);
  });

  // The vectors come from onnxruntime's native x86 build; here its WASM build runs the same graph
  // with other float32 kernels (the stem conv, the affines before each quantizer sum in another
  // order). Where a quantizer's input lies within rounding of a level boundary, one activation
  // level flips and the logits move by that level's weight (cifar100, png-32x32-noise: 0.13,
  // the same class). So every vector must give the exporter's class and exit decision, and all
  // but one of a model's vectors its numbers to 1e-3; a runtime that computes something else
  // misses on every vector.
  it.each(modelsWithVectors())("runs the %s edge graph like the exporter did (class and exit decision; numbers to 1e-3)", async (name) => {
    const m = getModel(name).manifest;
    const runner = await edgeRunner(getModel(name));
    const { vectors: vs } = vectorsFor(name);
    expect(vs.some((v) => v.split)).toBe(true);
    const off: string[] = [];
    for (const v of vs) {
      const out = await runEdge(runner, { data: Float32Array.from(v.input), dims: [1, 3, m.input.height, m.input.width] });
      expect(out.split.dims).toEqual([1, ...m.split.shape]);
      expect(argmax(out.exitLogits.data), v.name).toBe(argmax(v.exitLogits));
      expect(exitsAtEdge(entropy(out.exitLogits.data), m.exit.threshold), v.name).toBe(exitsAtEdge(v.entropy, m.exit.threshold));
      const sum = out.split.data.reduce((a, b) => a + b, 0);
      const close =
        maxAbsDiff(out.exitLogits.data, v.exitLogits) < 1e-3 &&
        (!v.split || maxAbsDiff(out.split.data, v.split) < 1e-3) &&
        (v.splitSum === undefined || Math.abs(sum - v.splitSum) < 1e-3 * Math.max(1, Math.abs(v.splitSum)));
      if (!close) off.push(v.name);
    }
    expect(off.length, `vectors off by more than 1e-3: ${off.join(", ")}`).toBeLessThanOrEqual(1);
  });

  it("answers concurrent runs on the one cached session each with its own input and output (no shared buffers)", async () => {
    const name = DEFAULT_MODEL;
    const m = getModel(name).manifest;
    const runner = await edgeRunner(getModel(name));
    expect(await edgeRunner(getModel(name))).toBe(runner); // created once per isolate
    const { vectors: vs } = vectorsFor(name);
    const dims = [1, 3, m.input.height, m.input.width];
    // all in flight at once, twice over: a reused input or output buffer would leak one into another
    const outs = await Promise.all([...vs, ...vs].map((v) => runEdge(runner, { data: Float32Array.from(v.input), dims })));
    outs.forEach((out, i) => expect(maxAbsDiff(out.exitLogits.data, vs[i % vs.length]!.exitLogits)).toBeLessThan(1e-3));
    expect(Array.from(outs[0]!.exitLogits.data)).toEqual(Array.from(outs[vs.length]!.exitLogits.data));
  });
});

describe("GET /healthz and GET /v1/models", () => {
  it("reports ready with the bundled models", async () => {
    const res = await SELF.fetch("http://edge/healthz");
    expect(res.status).toBe(200);
    const body = HealthResponse.parse(await res.json());
    expect(body.status).toBe("ok");
    expect(body.problems).toBeUndefined();
    expect(body.models.map((m) => m.name)).toContain(DEFAULT_MODEL);
  });

  describe("a misconfigured edge (issue 17): not ready, and it never signs with a weak secret", () => {
    const example = "replace-me-with-64-hex-characters"; // .dev.vars.example
    const ready = async (over: Partial<Bindings>) => {
      const e = { ...env, ...over };
      const health = await app.request("/healthz", {}, e);
      const oip = await app.request("/v2/health/ready", {}, e);
      return { health: { status: health.status, body: HealthResponse.parse(await health.json()) }, oip: { status: oip.status, body: OipReady.parse(await oip.json()) } };
    };

    it.each<[string, Partial<Bindings>, string[]]>([
      ["no secret", { FOGLINE_HMAC_SECRET: undefined }, ["hmac_secret_missing"]],
      ["the example secret", { FOGLINE_HMAC_SECRET: example }, ["hmac_secret_weak"]],
      ["a short secret", { FOGLINE_HMAC_SECRET: "0123456789abcdef0123456789abcdef" }, ["hmac_secret_weak"]],
      ["no CLOUD_URL", { CLOUD_URL: "" }, ["cloud_url_missing"]],
      ["an unparseable CLOUD_URL", { CLOUD_URL: "not a url" }, ["cloud_url_invalid"]],
      ["a CLOUD_URL that is not http(s)", { CLOUD_URL: "ftp://cloud.example.com" }, ["cloud_url_invalid"]],
      ["both wrong", { CLOUD_URL: undefined, FOGLINE_HMAC_SECRET: "" }, ["hmac_secret_missing", "cloud_url_missing"]],
    ])("%s: /healthz and /v2/health/ready answer 503 with the problems", async (_, over, codes) => {
      const r = await ready(over);
      expect(r.health.status).toBe(503);
      expect(r.health.body.status).toBe("misconfigured");
      expect(r.health.body.problems?.map((p) => p.code)).toEqual(codes);
      expect(r.oip).toEqual({ status: 503, body: { ready: false, problems: r.health.body.problems } });
      // the secret's value never shows
      expect(JSON.stringify(r)).not.toContain(example);
    });

    describe("the cloud refuses the edge's calls (issue 17): not ready, from the last answer or a probe", () => {
      // strong, but not the cloud's: the halves hold different secrets
      const wrong = { FOGLINE_HMAC_SECRET: "5d2f0c8e41b7a9936e1f04c7b28d5a6091e3f7c2a84b6d1e0f9c3a5b7d2e4f61" };
      const probes = (outcome: string) => [...allModels().keys()].reduce((n, model) => n + metrics.cloudProbes.value({ model, outcome }), 0);

      it("a different secret: 503 cloud_signature_refused on both, probed once for the two checks", async () => {
        const before = probes("unauthorized");
        const r = await ready(wrong);
        expect(r.health.status).toBe(503);
        expect(r.health.body.status).toBe("misconfigured");
        expect(r.health.body.problems?.map((p) => p.code)).toEqual(["cloud_signature_refused"]);
        expect(r.health.body.problems?.[0]?.message).toMatch(/FOGLINE_HMAC_SECRET differs/);
        expect(r.oip).toEqual({ status: 503, body: { ready: false, problems: r.health.body.problems } });
        // /healthz probed each model once; /v2/health/ready, right after, used what it learnt
        expect(probes("unauthorized") - before).toBe(allModels().size);
        expect(JSON.stringify(r)).not.toContain(wrong.FOGLINE_HMAC_SECRET);
      });

      it("a cloud with another export: 503 cloud_model_mismatch", async () => {
        const r = await ready(cloudAt(inject("mismatchedCloudPort")));
        expect(r.health.status).toBe(503);
        expect(r.health.body.problems?.map((p) => p.code)).toEqual(["cloud_model_mismatch"]);
        expect(r.oip).toEqual({ status: 503, body: { ready: false, problems: r.health.body.problems } });
      });

      it("the right secret and export: ready (200); a cloud that is down is an outage, not a misconfiguration: still ready", async () => {
        const ok = await ready({});
        expect(ok.health).toMatchObject({ status: 200, body: { status: "ok" } });
        expect(ok.oip).toEqual({ status: 200, body: { ready: true } });
        const down = await ready(cloudAt(inject("closedPort")));
        expect(down.health.status).toBe(200);
        expect(down.oip.status).toBe(200);
      });

      it("remembers a refusal met by traffic: no probe needed, and a successful call clears it", async () => {
        const e = { ...env, ...wrong };
        const r = await app.request("/v1/classify?threshold=0", { method: "POST", headers: { "content-type": "image/png" }, body: png32 }, e);
        expect(ClassifyResponse.parse(await r.json()).degradedReason).toBe("cloud_refused");
        const before = probes("unauthorized") + probes("ok");
        const health = await app.request("/healthz", {}, e);
        expect(health.status).toBe(503);
        expect(HealthResponse.parse(await health.json()).problems?.map((p) => p.code)).toEqual(["cloud_signature_refused"]);
        // the refused model was not probed again (only the other models, which traffic has not met)
        expect(probes("unauthorized") + probes("ok") - before).toBe(allModels().size - 1);
      });
    });

    it("answers from the edge and degrades (cloud_not_configured) rather than sign with the example secret", async () => {
      const r = await classifyOk({ query: { threshold: "0" }, env: { FOGLINE_HMAC_SECRET: example } });
      expect(r).toMatchObject({ degraded: true, degradedReason: "cloud_not_configured", exit: { at: "edge" } });
      await expectError(await makeRequest({ query: { exit: "cloud" }, env: { FOGLINE_HMAC_SECRET: example } }), 503, "cloud_unavailable");
    });
  });

  it("lists each model's manifest summary, labels from the manifest", async () => {
    const res = await SELF.fetch("http://edge/v1/models");
    const body = ModelsResponse.parse(await res.json());
    const m = body.models.find((x) => x.name === DEFAULT_MODEL)!;
    expect(m.labels).toEqual(model().labels);
    expect(m.split.shape).toEqual(model().split.shape);
  });
});

describe("POST /v1/classify", () => {
  it("answers at the edge when the exit entropy is under the threshold", async () => {
    const r = await classifyOk({ query: { threshold: "100" } });
    expect(r.exit).toMatchObject({ at: "edge", threshold: 100, mode: "auto" });
    expect(r.degraded).toBe(false);
    expect(r.wire).toBeUndefined();
    expect(r.top.length).toBe(Math.min(5, model().labels.length));
    expect(r.label).toBe(model().labels[r.classIndex]);
    expect(r.model).toEqual({ name: model().name, version: model().version, fingerprint: model().fingerprint });
  });

  it("sends the split to the cloud when the entropy is not under the threshold (int8 by default)", async () => {
    const r = await classifyOk({ query: { threshold: "0" } });
    expect(r.exit).toMatchObject({ at: "cloud", threshold: 0, mode: "auto" });
    expect(r.degraded).toBe(false);
    expect(r.wire).toEqual({ precision: "int8", bytes: encodedSize([1, ...model().split.shape], "int8") });
    expect(r.timings.cloudMs).toBeGreaterThanOrEqual(0);
  });

  it("uses the manifest's calibrated threshold by default", async () => {
    const r = await classifyOk();
    expect(r.exit.threshold).toBe(model().exit.threshold);
    expect(r.exit.at).toBe(r.exit.entropy < model().exit.threshold ? "edge" : "cloud");
  });

  it("flags out-of-distribution answers by the free energy of the head that answered", async () => {
    const m = model();
    const ood = m.ood!;
    const v = vectors.vectors.find((x) => x.contentType === "image/png")!;
    const body = base64ToBytes(v.imageBase64);
    const minusLse = (z: number[]) => {
      const max = Math.max(...z);
      return -(max + Math.log(z.reduce((a, x) => a + Math.exp(x - max), 0)));
    };
    // exit=auto: the rule chose the head, so `thresholds`; forced heads use `forcedThresholds`
    const cases = [
      { query: { threshold: "100" }, at: "edge", threshold: ood.thresholds.edge, logits: v.exitLogits },
      { query: { threshold: "0" }, at: "cloud", threshold: ood.thresholds.cloud, logits: v.logits },
      { query: { exit: "edge", threshold: "0" }, at: "edge", threshold: ood.forcedThresholds.edge, logits: v.exitLogits },
      { query: { exit: "cloud" }, at: "cloud", threshold: ood.forcedThresholds.cloud, logits: v.logits },
    ] as const;
    for (const c of cases) {
      const r = await classifyOk({ query: c.query, body, env: { WIRE_PRECISION: "fp32" } });
      expect(r.exit.at).toBe(c.at);
      expect(r.ood!.threshold, JSON.stringify(c.query)).toBe(c.threshold);
      expect(Math.abs(r.ood!.score - minusLse(c.logits)), JSON.stringify(c.query)).toBeLessThan(1e-3);
      expect(r.ood!.flagged).toBe(r.ood!.score > r.ood!.threshold);
    }
    // a degraded answer is the edge's, on an image the rule sent to the cloud: forced threshold
    const degraded = await classifyOk({ query: { threshold: "0" }, body, env: { CLOUD_URL: "" } });
    expect(degraded.degraded).toBe(true);
    expect(degraded.ood!.threshold).toBe(ood.forcedThresholds.edge);
    // the thresholds are the manifest's, as /v1/models shows them
    const models = ModelsResponse.parse(await (await app.request("/v1/models", {}, env)).json());
    expect(models.models.find((x) => x.name === m.name)!.ood).toEqual({ rule: ood.rule, thresholds: ood.thresholds, forcedThresholds: ood.forcedThresholds });
  });

  it("forces the path with exit=edge and exit=cloud", async () => {
    expect((await classifyOk({ query: { exit: "edge", threshold: "0" } })).exit.at).toBe("edge");
    const cloud = await classifyOk({ query: { exit: "cloud", threshold: "100" } });
    expect(cloud.exit).toMatchObject({ at: "cloud", mode: "cloud" });
  });

  it("reports the request's modelled energy: the tail is charged only when the cloud answered", async () => {
    const expected = vectors.energy;
    const edge = await classifyOk({ query: { exit: "edge" } });
    const cloud = await classifyOk({ query: { exit: "cloud" } });
    for (const [r, key] of [[edge, "edgeExit"], [cloud, "cloudExit"]] as const) {
      for (const m of ["paper", "op45nm"] as const) {
        // the Python energy model's figures for the same model (written into the test vectors)
        expect(r.energy[m].total).toBeCloseTo(expected[key][m]["total"]!, 3);
        expect(r.energy[m].saving).toBeCloseTo(expected[key][m]["saving"]!, 9);
      }
    }
    expect(edge.energy.paper.cloud).toBe(0);
    expect(cloud.energy.paper.cloud).toBeGreaterThan(0);
    expect(edge.energy.paper.saving).toBeGreaterThan(cloud.energy.paper.saving);
  });

  it.each(["fp32", "fp16", "int8"] as const)("carries the split in %s when WIRE_PRECISION says so", async (precision) => {
    const r = await classifyOk({ query: { exit: "cloud" }, env: { WIRE_PRECISION: precision } });
    expect(r.wire).toEqual({ precision, bytes: encodedSize([1, ...model().split.shape], precision) });
  });

  it("parity: for every PNG test vector, exit=cloud answers the exported model's class", async () => {
    // JPEG vectors decode a few grey levels apart across decoders (see preprocess.test.ts);
    // their graph parity is checked from the preprocessed tensor above.
    for (const v of vectors.vectors.filter((x) => x.contentType === "image/png")) {
      const r = await classifyOk({ query: { exit: "cloud" }, body: base64ToBytes(v.imageBase64), contentType: v.contentType, env: { WIRE_PRECISION: "fp32" } });
      expect(r.classIndex, v.name).toBe(argmax(v.logits));
      expect(Math.abs(r.exit.entropy - v.entropy), v.name).toBeLessThan(1e-3);
    }
  });

  it("accepts the image as multipart field 'image'", async () => {
    const form = new FormData();
    form.append("image", new Blob([png32], { type: "image/png" }), "cat.png");
    const r = await classifyOk({ body: form, contentType: null, query: { exit: "edge" } });
    expect(r.exit.at).toBe("edge");
  });

  it("accepts a JPEG and images of any size", async () => {
    const jpeg = vectors.vectors.find((v) => v.contentType === "image/jpeg");
    if (jpeg) await classifyOk({ body: base64ToBytes(jpeg.imageBase64), contentType: "image/jpeg", query: { exit: "edge" } });
    await classifyOk({ body: makePng(1, 1), query: { exit: "edge" } });
    await classifyOk({ body: makePng(640, 480), query: { exit: "edge" } });
  });

  describe("when the cloud is down or refuses", () => {
    it("degrades to the edge answer in exit=auto (200, degraded: true, with a reason)", async () => {
      const r = await classifyOk({ query: { threshold: "0" }, env: cloudAt(inject("closedPort")) });
      expect(r).toMatchObject({ degraded: true, exit: { at: "edge" } });
      // a fixed code: not the fetch error, the address or a setting name (issue 17)
      expect(r.degradedReason).toBe("cloud_unreachable");
    });

    it("returns 503 for exit=cloud", async () => {
      await expectError(await makeRequest({ query: { exit: "cloud" }, env: cloudAt(inject("closedPort")) }), 503, "cloud_unavailable");
    });

    it("degrades when the cloud rejects the signature (wrong secret), and 503s exit=cloud", async () => {
      // strong, but not the cloud's
      const wrong = { FOGLINE_HMAC_SECRET: "899f73a095cc20b79e590a91022d96304991a061d39ba43252397d3811977b29" };
      const r = await classifyOk({ query: { threshold: "0" }, env: wrong });
      expect(r.degradedReason).toBe("cloud_refused");
      const res = await makeRequest({ query: { exit: "cloud" }, env: wrong });
      const text = await res.clone().text();
      await expectError(res, 503, "cloud_unavailable");
      // the cloud's own message and the setting's name stay in the log
      expect(text).not.toMatch(/signature|FOGLINE_HMAC_SECRET|unauthorized|127\.0\.0\.1/);
    });

    it("refuses a cloud serving another version of the model with 409", async () => {
      const other = cloudAt(inject("mismatchedCloudPort"));
      await expectError(await makeRequest({ query: { exit: "cloud" }, env: other }), 409, "model_mismatch");
      await expectError(await makeRequest({ query: { threshold: "0" }, env: other }), 409, "model_mismatch");
      // answers that never needed the cloud are unaffected
      expect((await classifyOk({ query: { threshold: "100" }, env: other })).exit.at).toBe("edge");
    });
  });

  describe("per-client limit on cloud-bound samples (issue 17; CLOUD_RATE_LIMITER)", () => {
    // miniflare's real binding, 5 samples per 60 s per key (vitest.config.ts); each test its own client
    const limited = { CLOUD_RATE_LIMITER: env.TEST_CLOUD_RATE_LIMITER };
    const from = (ip: string) => ({ "cf-connecting-ip": ip });
    let n = 0;
    const client = () => `203.0.113.${++n}`;
    const oipBatch = (size: number, exit: "auto" | "cloud", ip: string, bindings: Partial<Bindings> = limited) => {
      const m = model();
      const vs = vectors.vectors.filter((v) => v.input);
      const data = Array.from({ length: size }, (_, i) => vs[i % vs.length]!.input).flat();
      const body = { inputs: [{ name: "image", datatype: "FP32", shape: [size, 3, m.input.height, m.input.width], data }], parameters: { exit, threshold: 0 } };
      const init = { method: "POST", headers: { "content-type": "application/json", ...from(ip) }, body: JSON.stringify(body) };
      return Promise.resolve(app.request(`/v2/models/${DEFAULT_MODEL}/infer`, init, { ...env, ...bindings }));
    };

    it("exit=cloud past the budget: 429 rate_limited with Retry-After; exit=auto degrades (rate_limited); edge answers go on", async () => {
      const ip = client();
      for (let i = 0; i < 5; i++) expect((await classifyOk({ query: { exit: "cloud" }, env: limited, headers: from(ip) })).exit.at).toBe("cloud");
      const res = await makeRequest({ query: { exit: "cloud" }, env: limited, headers: from(ip) });
      expect(res.headers.get("retry-after")).toBe("60");
      await expectError(res, 429, "rate_limited");
      const auto = await classifyOk({ query: { threshold: "0" }, env: limited, headers: from(ip) });
      expect(auto).toMatchObject({ degraded: true, degradedReason: "rate_limited", exit: { at: "edge", mode: "auto" } });
      expect(auto.wire).toBeUndefined();
      // what exits at the edge is never limited
      expect(await classifyOk({ query: { exit: "edge" }, env: limited, headers: from(ip) })).toMatchObject({ degraded: false, exit: { at: "edge" } });
      expect(await classifyOk({ query: { threshold: "100" }, env: limited, headers: from(ip) })).toMatchObject({ degraded: false, exit: { at: "edge" } });
      // per client: another address has its own budget
      expect((await classifyOk({ query: { exit: "cloud" }, env: limited, headers: from(client()) })).exit.at).toBe("cloud");
      // CLOUD_RATE_LIMIT_PERIOD (the binding's period) is what Retry-After says
      const ten = await makeRequest({ query: { exit: "cloud" }, env: { ...limited, CLOUD_RATE_LIMIT_PERIOD: "10" }, headers: from(ip) });
      expect(ten.status).toBe(429);
      expect(ten.headers.get("retry-after")).toBe("10");
    });

    it("edge-answered requests spend nothing of the budget", async () => {
      const ip = client();
      for (let i = 0; i < 8; i++) await classifyOk({ query: { exit: "edge" }, env: limited, headers: from(ip) });
      for (let i = 0; i < 5; i++) expect((await classifyOk({ query: { exit: "cloud" }, env: limited, headers: from(ip) })).exit.at).toBe("cloud");
    });

    it("counts each cloud-bound sample of an OIP batch, not the request", async () => {
      const ip = client();
      const first = await oipBatch(4, "cloud", ip);
      expect(first.status, await first.clone().text()).toBe(200);
      // 1 sample left: a batch of 2 is refused whole
      const res = await oipBatch(2, "cloud", ip);
      expect(res.headers.get("retry-after")).toBe("60");
      await expectError(res, 429, "rate_limited");
      const auto = OipInferResponse.parse(await (await oipBatch(3, "auto", ip)).json());
      expect(auto.parameters).toMatchObject({ degraded: true, degraded_reason: "rate_limited", exit_point: "edge,edge,edge" });
      // a batch over the whole budget never passes
      await expectError(await oipBatch(6, "cloud", client()), 429, "rate_limited");
    });

    it("without the binding (dev, npm start) nothing is limited", async () => {
      const ip = client();
      for (let i = 0; i < 3; i++) expect((await oipBatch(4, "cloud", ip, {})).status).toBe(200);
    });

    it("an edge that cannot call the cloud spends nothing; a failing binding admits", async () => {
      const ip = client();
      const noSecret = { ...limited, FOGLINE_HMAC_SECRET: "" };
      for (let i = 0; i < 6; i++) expect((await classifyOk({ query: { threshold: "0" }, env: noSecret, headers: from(ip) })).degradedReason).toBe("cloud_not_configured");
      expect((await classifyOk({ query: { exit: "cloud" }, env: limited, headers: from(ip) })).exit.at).toBe("cloud");
      const broken = { CLOUD_RATE_LIMITER: { limit: () => Promise.reject(new Error("binding down")) } };
      expect((await classifyOk({ query: { exit: "cloud" }, env: broken, headers: from(ip) })).exit.at).toBe("cloud");
    });

    it("keys by CF-Connecting-IP, an IPv6 address by its /64 (not by headers a client can vary)", () => {
      const key = (h: Record<string, string>) => clientKey(new Headers(h));
      expect(key({ "cf-connecting-ip": "198.51.100.7" })).toBe("ip:198.51.100.7");
      expect(key({ "cf-connecting-ip": "2001:db8:0:12::1" })).toBe("ip6:2001:db8:0:12::/64");
      expect(key({ "cf-connecting-ip": "2001:0DB8:0000:0012:ffff:1:2:3" })).toBe("ip6:2001:db8:0:12::/64");
      expect(key({ "cf-connecting-ip": "::1" })).toBe("ip6:0:0:0:0::/64");
      expect(key({ "cf-connecting-ip": "2001:db8::" })).toBe("ip6:2001:db8:0:0::/64");
      expect(key({ "cf-connecting-ip": "::ffff:192.0.2.1" })).toBe("ip6:0:0:0:0::/64");
      expect(key({ authorization: "Bearer whatever" })).toBe("unknown");
      expect(key({})).toBe("unknown");
    });
  });

  describe("rejects bad requests with a JSON error", () => {
    it("404 for an unknown model", async () => {
      await expectError(await makeRequest({ query: { model: "imagenet-9000" } }), 404, "model_not_found");
    });

    it.each([
      [{ exit: "sideways" }],
      [{ threshold: "-1" }],
      [{ threshold: "abc" }],
      [{ model: "../etc/passwd" }],
    ])("400 for malformed query %j", async (query) => {
      await expectError(await makeRequest({ query }), 400, "invalid_query");
    });

    it("400 for a body that is not an image", async () => {
      await expectError(await makeRequest({ body: "hello, I am text" }), 400, "not_an_image");
    });

    it("400 for a truncated image", async () => {
      await expectError(await makeRequest({ body: png32.slice(0, Math.floor(png32.length / 2)) }), 400, "image_decode_failed");
      const jpeg = vectors.vectors.find((v) => v.contentType === "image/jpeg");
      if (jpeg) {
        const bytes = base64ToBytes(jpeg.imageBase64);
        await expectError(await makeRequest({ body: bytes.slice(0, Math.floor(bytes.length / 2)), contentType: "image/jpeg" }), 400, "image_decode_failed");
      }
    });

    it("400 for an empty body", async () => {
      await expectError(await makeRequest({ body: new Uint8Array(0) }), 400, "empty_body");
    });

    it("415 for a wrong or missing content type", async () => {
      await expectError(await makeRequest({ contentType: "text/plain" }), 415, "unsupported_media_type");
      await expectError(await makeRequest({ contentType: "application/json", body: "{}" }), 415, "unsupported_media_type");
      await expectError(await makeRequest({ contentType: null, body: new Blob([png32]) }), 415, "unsupported_media_type");
    });

    it("400 when the bytes disagree with the declared type", async () => {
      await expectError(await makeRequest({ contentType: "image/jpeg" }), 400, "content_type_mismatch");
    });

    it("400 for multipart without an 'image' field", async () => {
      const form = new FormData();
      form.append("file", new Blob([png32], { type: "image/png" }), "x.png");
      await expectError(await makeRequest({ body: form, contentType: null }), 400, "missing_image_field");
    });

    it("413 for a body over MAX_BODY_BYTES (10 MB by default)", async () => {
      await expectError(await makeRequest({ body: new Uint8Array(10 * 1024 * 1024 + 1) }), 413, "payload_too_large");
      await expectError(await makeRequest({ body: makePng(200, 200), env: { MAX_BODY_BYTES: "1000" } }), 413, "payload_too_large");
    });

    it("413 for too many pixels, refused from the header before decoding", async () => {
      await expectError(await makeRequest({ body: pngHeaderOnly(50_000, 50_000) }), 413, "image_too_large");
    });

    it("404 JSON for an unknown route", async () => {
      await expectError(await SELF.fetch("http://edge/v1/nope"), 404, "not_found");
    });
  });
});
