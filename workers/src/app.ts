import { Hono } from "hono";
import { metricsHandler, notFound, observe, onError, requestId } from "@fogline/shared/http";
import { edgeConfig, type AppEnv } from "./env.js";
import { devCloseConnections } from "./dev.js";
import { metrics, registry, requestLogger } from "./observability.js";
import { classify } from "./routes/classify.js";
import { demo } from "./routes/demo.js";
import { models } from "./routes/models.js";
import { oip } from "./routes/oip.js";
import { openapi } from "./routes/openapi.js";

export const app = new Hono<AppEnv>();

app.use(devCloseConnections());
app.use(requestId());
app.use(observe(metrics.http, requestLogger));
app.get("/metrics", metricsHandler(registry, (c) => edgeConfig(c.env).metricsToken));
app.route("/", models);
app.route("/", classify);
app.route("/", oip);
app.route("/", openapi);
app.route("/", demo);
app.notFound(notFound);
app.onError(onError("edge", requestLogger));
