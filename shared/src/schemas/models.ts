import * as z from "zod";
import { ManifestSummary } from "./manifest.js";

/** `GET /v1/models` on either half. */
export const ModelsResponse = z.object({ models: z.array(ManifestSummary) });
export type ModelsResponse = z.infer<typeof ModelsResponse>;

/** What keeps the edge from calling the cloud (its readiness endpoints report these). */
export const ConfigProblemCode = z.enum(["hmac_secret_missing", "hmac_secret_weak", "cloud_url_missing", "cloud_url_invalid"]);
export type ConfigProblemCode = z.infer<typeof ConfigProblemCode>;
export const ConfigProblem = z.object({ code: ConfigProblemCode, message: z.string() });
export type ConfigProblem = z.infer<typeof ConfigProblem>;

/** `GET /healthz` on either half. */
export const HealthResponse = z.object({
  status: z.enum(["ok", "misconfigured"]).meta({
    description: "`misconfigured` (HTTP 503, edge only): the edge cannot call the cloud, see `problems`; it still answers what exits at the edge",
  }),
  role: z.enum(["edge", "cloud"]),
  models: z.array(z.object({ name: z.string(), version: z.string(), fingerprint: z.string() })),
  problems: z.array(ConfigProblem).optional().meta({ description: "when `misconfigured`: what to fix (the secret or CLOUD_URL)" }),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
