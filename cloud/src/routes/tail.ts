import { Hono } from "hono";
import { MAX_BATCH } from "@fogline/shared/contracts";
import { ApiError } from "@fogline/shared/errors";
import { checkHeaders, verify, type VerifyFailure } from "@fogline/shared/hmac";
import { logFields } from "@fogline/shared/http";
import { runTail } from "@fogline/shared/runner";
import { TAIL_HEADERS, type TailResponse } from "@fogline/shared/schemas/tail";
import { readLimited } from "@fogline/shared/body";
import { decodeHeader, decodeTensor, encodedSize, firstOutOfRange, MAX_ABS_ACTIVATION, WireFormatError } from "@fogline/shared/wire";
import type { CloudEnv } from "../env.js";

export const tail = new Hono<CloudEnv>();

const WHY: Record<VerifyFailure | "replayed", string> = {
  missing: "missing signature headers",
  malformed: "malformed signature headers",
  stale: "stale or future timestamp",
  invalid: "bad signature",
  replayed: "this signed call was already accepted (replay)",
};

tail.post("/v1/tail/:model", async (c) => {
  const { models, secret, maxSkewS, maxBatch, now, replay, metrics } = c.var.cloud;
  const name = c.req.param("model");
  const model = models.get(name);
  if (!model) throw new ApiError("model_not_found", `unknown model "${name}" (served: ${[...models.keys()].join(", ")})`);
  const { manifest } = model;

  // Everything that needs no body first, so an unsigned, malformed, stale or replayed call is
  // refused before a byte of its body is read: the headers' presence and format, the timestamp
  // window, and whether this signature was already accepted (only verified signatures are in the
  // replay cache, so a miss proves nothing and a hit is a replay).
  const signed = {
    fingerprint: c.req.header(TAIL_HEADERS.fingerprint),
    timestamp: c.req.header(TAIL_HEADERS.timestamp),
    nonce: c.req.header(TAIL_HEADERS.nonce),
    signature: c.req.header(TAIL_HEADERS.signature),
  };
  const nowS = Math.floor(now() / 1000);
  const refuse = (why: VerifyFailure | "replayed"): never => {
    metrics.authFailures.inc({ reason: why });
    logFields(c, { auth: why });
    throw new ApiError("unauthorized", `${WHY[why]}: edge->cloud calls are signed with FOGLINE_HMAC_SECRET`);
  };
  const pre = checkHeaders(signed, nowS, maxSkewS);
  if (!pre.ok) refuse(pre.reason);
  if (replay.seen(signed.signature!, nowS)) refuse("replayed");

  // The largest legal payload is known from the manifest, never from the client; the limit holds
  // while streaming, so a missing or lying content-length cannot make us buffer more. It is the
  // contract's batch (what any edge may send), not FOGLINE_MAX_BATCH, so that an edge's batch
  // over a lowered limit is read and refused as batch_too_large below, not as a bare 413.
  const maxBytes = encodedSize([MAX_BATCH, ...manifest.split.shape], "fp32");
  const declared = Number(c.req.header("content-length") ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new ApiError("payload_too_large", `${declared} bytes is more than the ${maxBytes} a batch of ${MAX_BATCH} can take`);
  }
  const body = await readLimited(c.req.raw.body, maxBytes);

  // the window again: the body may have taken its time
  const afterS = Math.floor(now() / 1000);
  const check = await verify(secret, signed, body, afterS, maxSkewS);
  if (!check.ok) refuse(check.reason);
  // only verified signatures are remembered, so nobody without the secret can fill the cache
  const verdict = replay.check(signed.signature!, Number(signed.timestamp), afterS);
  if (verdict === "full") {
    throw new ApiError("overloaded", `more than ${replay.maxEntries} signed calls within ${maxSkewS} s on this instance; retry later`);
  }
  if (verdict === "replayed") refuse("replayed");
  const fingerprint = signed.fingerprint!;

  let header;
  try {
    header = decodeHeader(body);
  } catch (e) {
    if (e instanceof WireFormatError) throw new ApiError("invalid_payload", e.message);
    throw e;
  }
  if (header.fingerprint !== fingerprint) throw new ApiError("invalid_payload", "the payload's fingerprint differs from the signed one");
  if (header.fingerprint !== manifest.fingerprint) {
    throw new ApiError(
      "model_mismatch",
      `the edge runs a different "${name}" model (fingerprint ${header.fingerprint.slice(0, 12)}…) than the cloud (version ${manifest.version}, fingerprint ${manifest.fingerprint.slice(0, 12)}…); deploy the same models/${name}/ to both`,
    );
  }
  const [batch, ...rest] = header.shape;
  if (rest.length === manifest.split.shape.length && rest.every((d, i) => d === manifest.split.shape[i]) && batch! > maxBatch) {
    throw new ApiError("batch_too_large", `a batch of ${batch} is more than this cloud's ${maxBatch} per call (FOGLINE_MAX_BATCH)`);
  }
  if (rest.length !== manifest.split.shape.length || rest.some((d, i) => d !== manifest.split.shape[i]) || batch! > maxBatch) {
    throw new ApiError(
      "invalid_payload",
      `split shape ${header.shape.join("x")} does not match the model's [N<=${maxBatch}, ${manifest.split.shape.join(", ")}]`,
    );
  }

  const split = decodeTensor(body, header);
  // an honest edge never sends NaN, Inf or values beyond MAX_ABS_ACTIVATION (legal inputs stay
  // three orders of magnitude under it): refuse, rather than answer logits that JSON turns into nulls
  const bad = firstOutOfRange(split);
  if (bad >= 0) {
    throw new ApiError("invalid_payload", `the activation holds ${split[bad]} at index ${bad}: values must be finite and within +-${MAX_ABS_ACTIVATION}`);
  }
  const t0 = performance.now();
  const logits = await runTail(model.tail, { data: split, dims: header.shape });
  const inferMs = performance.now() - t0;
  metrics.inference.observe({ model: name, stage: "tail" }, inferMs / 1000);
  metrics.tailRows.inc({ model: name, precision: header.precision }, batch!);
  logFields(c, { model: name, batch, precision: header.precision, inferMs: Math.round(inferMs * 10) / 10 });
  const notFinite = firstOutOfRange(logits.data, Number.MAX_VALUE);
  if (notFinite >= 0) throw new ApiError("output_not_finite", `the tail's logit ${notFinite} is ${logits.data[notFinite]} for this activation`);
  const classes = logits.dims[1] ?? manifest.labels.length;
  const response: TailResponse = {
    model: { name: manifest.name, version: manifest.version, fingerprint: manifest.fingerprint },
    shape: [batch!, classes],
    logits: Array.from(logits.data),
    timings: { inferMs },
  };
  return c.json(response);
});
