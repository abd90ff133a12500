/**
 * hono pieces both apps use (hono's core speaks only Request/Response, so this stays
 * runtime-neutral): request ids, metrics and access logs, `/metrics`, and the one place errors
 * become the JSON envelope.
 */
import type { Context, ErrorHandler, Handler, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { matchedRoutes } from "hono/route";
import { timingSafeEqual } from "hono/utils/buffer";
import { ApiError, errorBody, isOipPath, oipErrorBody, type ErrorCode } from "./errors.js";
import { createLogger, type LogFields, type Logger } from "./log.js";
import { METRICS_CONTENT_TYPE, type HttpMetrics, type Registry } from "./metrics.js";
import { TAIL_HEADERS } from "./schemas/tail.js";

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Context variables every app sets: the request id, and extra fields for the access log line. */
export type RequestVars = { requestId: string; logFields?: LogFields };

/** Reuses a sane incoming x-request-id (the edge passes its own to the cloud), else makes one. */
export function requestId(): MiddlewareHandler<{ Variables: { requestId: string } }> {
  return async (c, next) => {
    const incoming = c.req.header(TAIL_HEADERS.requestId);
    const id = incoming && ID_PATTERN.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", id);
    c.header(TAIL_HEADERS.requestId, id);
    await next();
  };
}

/** Adds fields to this request's access log line (e.g. where it exited). */
export function logFields(c: Context, fields: LogFields): void {
  c.set("logFields", { ...(c.get("logFields") as LogFields | undefined), ...fields });
}

function httpExceptionCode(status: number): ErrorCode {
  if (status === 413) return "payload_too_large";
  if (status === 415) return "unsupported_media_type";
  if (status === 401) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 405) return "method_not_allowed";
  if (status >= 500) return "internal_error";
  return "invalid_query";
}

/** The stable code of an error response (the same one `onError` renders). */
export function errorCodeOf(err: unknown, status: number): ErrorCode {
  if (err instanceof ApiError) return err.code;
  if (err instanceof HTTPException) return httpExceptionCode(err.status);
  if (status === 404) return "not_found";
  return httpExceptionCode(status);
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The route pattern that answered (`/v1/tail/:model`), never the raw path: bounded label values. */
function routeLabel(c: Context): string {
  const route = matchedRoutes(c)[c.req.routeIndex];
  if (!route || route.path === "*" || route.path === "/*") return "unmatched";
  return route.path;
}

/**
 * Per request: counts it by route/method/status, times it, counts error codes, and writes one
 * JSON access log line with the request id. Timing uses performance.now(); inside workerd that
 * clock only advances on I/O, so edge durations leave out CPU work (docs/runtime.md#workerds-clock).
 */
export function observe(metrics: HttpMetrics, logger: (c: Context) => Logger): MiddlewareHandler {
  return async (c, next) => {
    const t0 = performance.now();
    const early = logger(c);
    if (early.enabled("debug")) early.log("debug", "request started", { requestId: c.get("requestId"), method: c.req.method, path: c.req.path });
    await next();
    const ms = performance.now() - t0;
    const status = c.res.status;
    const route = routeLabel(c);
    const method = METHODS.has(c.req.method) ? c.req.method : "other";
    metrics.requests.inc({ route, method, status });
    metrics.duration.observe({ route }, ms / 1000);
    const code = status >= 400 ? errorCodeOf(c.error, status) : undefined;
    if (code) metrics.errors.inc({ code });
    const log = logger(c);
    const level = status >= 500 ? "error" : "info";
    if (log.enabled(level)) {
      log.log(level, "request", {
        requestId: c.get("requestId"),
        method,
        route,
        status,
        ms: Math.round(ms * 10) / 10,
        ...(code && { code }),
        ...(c.get("logFields") as LogFields | undefined),
      });
    }
  };
}

/**
 * `GET /metrics` in Prometheus text format. When a token is configured the scraper must send
 * `Authorization: Bearer <token>` (both halves face the internet); without one it is open. The
 * token is compared with hono's `timingSafeEqual`. Not hono's `bearerAuth`: it answers 400 (not
 * 401) for a malformed header, accepts only token68 characters, and its plain-text 401 would
 * bypass the JSON error envelope (`onError`).
 */
export function metricsHandler(registry: Registry, token: (c: Context) => string | undefined): Handler {
  return async (c) => {
    const want = token(c);
    if (want) {
      const got = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim() ?? "";
      if (!(await timingSafeEqual(got, want))) throw new ApiError("unauthorized", "GET /metrics needs Authorization: Bearer <metrics token>");
    }
    return c.body(registry.render(), 200, { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" });
  };
}

/**
 * The error body of this request's path: the Open Inference Protocol's `{error: "<message>", code}`
 * under `/v2`, Fogline's `{ error: { code, message } }` everywhere else.
 */
function errorJson(c: Context, code: ErrorCode, message: string, status: ContentfulStatusCode, headers?: Readonly<Record<string, string>>): Response {
  const body = isOipPath(c.req.path) ? oipErrorBody(code, message) : errorBody(code, message);
  return c.json(body, status, headers ? { ...headers } : undefined);
}

/** Renders every error as JSON with its code (errorJson): never an HTML page or a stack trace. */
export function onError(role: "edge" | "cloud", logger: (c: Context) => Logger = () => createLogger(role)): ErrorHandler {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) return errorJson(c, err.code, err.message, err.status, err.headers);
    if (err instanceof HTTPException) {
      const code = httpExceptionCode(err.status);
      return errorJson(c, code, err.message || code, err.status as ContentfulStatusCode);
    }
    logger(c).log("error", "unhandled error", { requestId: c.get("requestId"), error: String(err), stack: err?.stack });
    return errorJson(c, "internal_error", "internal error", 500);
  };
}

export const notFound: NotFoundHandler = (c) => errorJson(c, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, 404);
