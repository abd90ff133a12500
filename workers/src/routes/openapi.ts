import { Hono } from "hono";
import pkg from "../../../package.json";
import { openApiDocument } from "../schemas/openapi.js";
import type { AppEnv } from "../env.js";

export const openapi = new Hono<AppEnv>();

let doc: Record<string, unknown> | undefined;

/** The OpenAPI 3.1 document of this API, generated from the zod schemas (workers/src/schemas/openapi.ts). */
openapi.get("/openapi.json", (c) => {
  doc ??= openApiDocument({ version: pkg.version });
  c.header("access-control-allow-origin", "*");
  return c.json({ ...doc, servers: [{ url: new URL(c.req.url).origin }] });
});
