import * as z from "zod";
import { ManifestSummary } from "./manifest.js";

/** `GET /v1/models` on either half. */
export const ModelsResponse = z.object({ models: z.array(ManifestSummary) });
export type ModelsResponse = z.infer<typeof ModelsResponse>;

/**
 * What keeps the edge from calling the cloud (its readiness endpoints report these): its own
 * settings, or the cloud's last answer (a refused signature: the halves hold different secrets;
 * another export of a model), remembered per isolate and re-checked at most every 30 s.
 */
export const ConfigProblemCode = z.enum([
  "hmac_secret_missing",
  "hmac_secret_weak",
  "cloud_url_missing",
  "cloud_url_invalid",
  "cloud_signature_refused",
  "cloud_model_mismatch",
]);
export type ConfigProblemCode = z.infer<typeof ConfigProblemCode>;
export const ConfigProblem = z.object({ code: ConfigProblemCode, message: z.string() });
export type ConfigProblem = z.infer<typeof ConfigProblem>;

/** `GET /healthz` on either half. */
export const HealthResponse = z.object({
  status: z.enum(["ok", "misconfigured"]).meta({
    description: "`misconfigured` (HTTP 503, edge only): the edge cannot call the cloud, or the cloud refuses its calls, see `problems`; it still answers what exits at the edge",
  }),
  role: z.enum(["edge", "cloud"]),
  models: z.array(z.object({ name: z.string(), version: z.string(), fingerprint: z.string() })),
  problems: z.array(ConfigProblem).optional().meta({ description: "when `misconfigured`: what to fix (the secret, CLOUD_URL, or the cloud's secret or export)" }),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
