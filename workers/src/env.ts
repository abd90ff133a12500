import { z } from "zod";
import { WirePrecision } from "../../shared/src/schemas/classify.js";
import { DEFAULT_MAX_BODY_BYTES } from "../../shared/src/upload.js";
import { DEFAULT_MAX_PIXELS } from "../../shared/src/image.js";

/** Worker bindings, declared once (wrangler.toml [vars]; the secret via `wrangler secret put`). */
export interface Bindings {
  /** Base URL of the cloud half, e.g. https://fogline-cloud.example.com */
  CLOUD_URL?: string;
  /** Shared HMAC key of edge->cloud calls (secret) */
  FOGLINE_HMAC_SECRET?: string;
  /** fp32 | fp16 | int8: precision of the split activation on the wire */
  WIRE_PRECISION?: string;
  CLOUD_TIMEOUT_MS?: string;
  MAX_BODY_BYTES?: string;
  MAX_PIXELS?: string;
}

export type AppEnv = { Bindings: Bindings; Variables: { requestId: string } };

const intFromString = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EdgeConfig = z.object({
  cloudUrl: z.url().optional(),
  hmacSecret: z.string().min(1).optional(),
  wirePrecision: WirePrecision.default("int8"),
  cloudTimeoutMs: intFromString(2000),
  maxBodyBytes: intFromString(DEFAULT_MAX_BODY_BYTES),
  maxPixels: intFromString(DEFAULT_MAX_PIXELS),
});
export type EdgeConfig = z.infer<typeof EdgeConfig>;

const blankToUndefined = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

/** Parses the bindings; a misconfigured deployment fails loudly on its first request. */
export function edgeConfig(env: Bindings | undefined): EdgeConfig {
  const r = EdgeConfig.safeParse({
    cloudUrl: blankToUndefined(env?.CLOUD_URL),
    hmacSecret: blankToUndefined(env?.FOGLINE_HMAC_SECRET),
    wirePrecision: blankToUndefined(env?.WIRE_PRECISION),
    cloudTimeoutMs: blankToUndefined(env?.CLOUD_TIMEOUT_MS),
    maxBodyBytes: blankToUndefined(env?.MAX_BODY_BYTES),
    maxPixels: blankToUndefined(env?.MAX_PIXELS),
  });
  if (!r.success) throw new Error(`invalid Worker configuration: ${z.prettifyError(r.error)}`);
  return r.data;
}
