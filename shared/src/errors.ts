/**
 * The one error type both apps throw. `app.onError` in workers/ and cloud/ renders it as the
 * JSON envelope `{ error: { code, message } }`; anything else becomes a 500 `internal_error`.
 * Codes are stable API: clients may branch on them, so never rename one.
 */
import * as z from "zod";

export const ERROR_CODES = {
  // request shape
  invalid_query: 400,
  not_found: 404,
  method_not_allowed: 405,
  // uploads (edge)
  unsupported_media_type: 415,
  empty_body: 400,
  body_incomplete: 400,
  payload_too_large: 413,
  missing_image_field: 400,
  invalid_multipart: 400,
  not_an_image: 400,
  content_type_mismatch: 400,
  image_decode_failed: 400,
  image_empty: 400,
  image_too_large: 413,
  image_unsupported: 422,
  // Open Inference Protocol requests (tensor shape, datatype, data)
  invalid_input: 400,
  // a legal input the model answers with NaN or Infinity (JSON would send null): refused instead
  output_not_finite: 422,
  // models
  model_not_found: 404,
  model_mismatch: 409,
  // edge -> cloud hop
  unauthorized: 401,
  invalid_payload: 400,
  // more samples in one tail call than the cloud's FOGLINE_MAX_BATCH (the edge answers the same)
  batch_too_large: 413,
  cloud_unavailable: 503,
  // a client's budget of cloud-bound samples is spent (exit=cloud; exit=auto degrades instead)
  rate_limited: 429,
  overloaded: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorStatus = (typeof ERROR_CODES)[ErrorCode];

export class ApiError extends Error {
  readonly status: ErrorStatus;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** response headers to send with the error (e.g. `retry-after` of a 429) */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_CODES[code];
  }
}

const codes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** The envelope of every 4xx/5xx body of both apps (`/v1`; `/v2` answers oipErrorBody): what
 * errorBody writes, and what the edge reads back from a refusing cloud. */
export const ErrorResponse = z.object({
  error: z.object({ code: z.enum(codes), message: z.string() }),
});
export type ErrorResponse = z.infer<typeof ErrorResponse>;

export function errorBody(code: ErrorCode, message: string): ErrorResponse {
  return { error: { code, message } };
}

/**
 * The Open Inference Protocol's error body, `{"error": "<message>"}` (its clients read `error` as
 * a string), with the stable code beside it: what every `/v2` route answers.
 */
export function oipErrorBody(code: ErrorCode, message: string): { error: string; code: ErrorCode } {
  return { error: message, code };
}

/** Paths of the Open Inference Protocol (`/v2`), whose errors take its shape. */
export const isOipPath = (path: string): boolean => path === "/v2" || path.startsWith("/v2/");
