import { Hono } from "hono";
import { ApiError } from "../../../shared/src/errors.js";
import { verify } from "../../../shared/src/hmac.js";
import { runTail } from "../../../shared/src/runner.js";
import { TAIL_HEADERS, type TailResponse } from "../../../shared/src/schemas/tail.js";
import { readLimited } from "../../../shared/src/upload.js";
import { decodeHeader, decodeTensor, encodedSize, WireFormatError } from "../../../shared/src/wire.js";
import type { CloudEnv } from "../env.js";

export const tail = new Hono<CloudEnv>();

tail.post("/v1/tail/:model", async (c) => {
  const { models, secret, maxSkewS, maxBatch, now } = c.var.cloud;
  const name = c.req.param("model");
  const model = models.get(name);
  if (!model) throw new ApiError("model_not_found", `unknown model "${name}" (served: ${[...models.keys()].join(", ")})`);
  const { manifest } = model;

  // The largest legal payload is known from the manifest, never from the client.
  const maxBytes = encodedSize([maxBatch, ...manifest.split.shape], "fp32");
  const declared = Number(c.req.header("content-length") ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new ApiError("payload_too_large", `${declared} bytes is more than the ${maxBytes} a batch of ${maxBatch} can take`);
  }
  const body = await readLimited(c.req.raw.body, maxBytes);

  const fingerprint = c.req.header(TAIL_HEADERS.fingerprint);
  const check = await verify(
    secret,
    fingerprint,
    c.req.header(TAIL_HEADERS.timestamp),
    c.req.header(TAIL_HEADERS.signature),
    body,
    Math.floor(now() / 1000),
    maxSkewS,
  );
  if (!check.ok) {
    const why = { missing: "missing signature headers", malformed: "malformed signature headers", stale: "stale or future timestamp", invalid: "bad signature" }[
      check.reason
    ];
    throw new ApiError("unauthorized", `${why}: edge->cloud calls are signed with FOGLINE_HMAC_SECRET`);
  }

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
  if (rest.length !== manifest.split.shape.length || rest.some((d, i) => d !== manifest.split.shape[i]) || batch! > maxBatch) {
    throw new ApiError(
      "invalid_payload",
      `split shape ${header.shape.join("x")} does not match the model's [N<=${maxBatch}, ${manifest.split.shape.join(", ")}]`,
    );
  }

  const t0 = performance.now();
  const logits = await runTail(model.tail, { data: decodeTensor(body, header), dims: header.shape });
  const inferMs = performance.now() - t0;
  const classes = logits.dims[1] ?? manifest.labels.length;
  const response: TailResponse = {
    model: { name: manifest.name, version: manifest.version, fingerprint: manifest.fingerprint },
    shape: [batch!, classes],
    logits: Array.from(logits.data),
    timings: { inferMs },
  };
  return c.json(response);
});
