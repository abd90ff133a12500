/**
 * hono pieces both apps use (hono's core speaks only Request/Response, so this stays
 * runtime-neutral): request ids, and the one place errors become the JSON envelope.
 */
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, errorBody, type ErrorCode } from "./errors.js";
import { TAIL_HEADERS } from "./schemas/tail.js";

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

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

function httpExceptionCode(status: number): ErrorCode {
  if (status === 413) return "payload_too_large";
  if (status === 415) return "unsupported_media_type";
  if (status === 401) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 405) return "method_not_allowed";
  if (status >= 500) return "internal_error";
  return "invalid_query";
}

/** Renders every error as `{ error: { code, message } }`: never an HTML page or a stack trace. */
export function onError(role: "edge" | "cloud"): ErrorHandler {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
    if (err instanceof HTTPException) {
      const code = httpExceptionCode(err.status);
      return c.json(errorBody(code, err.message || code), err.status);
    }
    console.error(
      JSON.stringify({ level: "error", role, msg: "unhandled error", error: String(err), stack: err?.stack, requestId: c.get("requestId") }),
    );
    return c.json(errorBody("internal_error", "internal error"), 500);
  };
}

export const notFound: NotFoundHandler = (c) =>
  c.json(errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404);
