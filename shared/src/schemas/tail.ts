import * as z from "zod";

/** The split activation's precision on the wire (wire.ts; contracts.json "wire".dtypes). */
export const WirePrecision = z.enum(["fp32", "fp16", "int8"]);
export type WirePrecision = z.infer<typeof WirePrecision>;

/** 200 body of the cloud's `POST /v1/tail/{model}` (the split activation goes in as binary, see wire.ts). */
export const TailResponse = z.object({
  model: z.object({ name: z.string(), version: z.string(), fingerprint: z.string() }),
  /** row-major `[N, C]` */
  shape: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  logits: z.array(z.number()),
  timings: z.object({ inferMs: z.number() }),
});
export type TailResponse = z.infer<typeof TailResponse>;

/** Headers of a signed edge->cloud call (see hmac.ts). */
export const TAIL_HEADERS = {
  timestamp: "x-fogline-timestamp",
  signature: "x-fogline-signature",
  fingerprint: "x-fogline-fingerprint",
  nonce: "x-fogline-nonce",
  requestId: "x-request-id",
} as const;

export const TAIL_CONTENT_TYPE = "application/vnd.fogline.activation";
