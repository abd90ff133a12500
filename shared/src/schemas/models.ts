import * as z from "zod";
import { ManifestSummary } from "./manifest.js";

/** `GET /v1/models` on either half. */
export const ModelsResponse = z.object({ models: z.array(ManifestSummary) });
export type ModelsResponse = z.infer<typeof ModelsResponse>;

/** `GET /healthz` on either half. */
export const HealthResponse = z.object({
  status: z.literal("ok"),
  role: z.enum(["edge", "cloud"]),
  models: z.array(z.object({ name: z.string(), version: z.string(), fingerprint: z.string() })),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
