import { Hono } from "hono";
import { onError, notFound, requestId } from "../../shared/src/http.js";
import type { AppEnv } from "./env.js";
import { classify } from "./routes/classify.js";
import { models } from "./routes/models.js";
import { oip } from "./routes/oip.js";

export const app = new Hono<AppEnv>();

app.use(requestId());
app.route("/", models);
app.route("/", classify);
app.route("/", oip);
app.notFound(notFound);
app.onError(onError("edge"));
