import * as z from "zod";
import { ERROR_CODES, type ErrorCode } from "../errors.js";

const codes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** Every 4xx/5xx body of both apps. */
export const ErrorResponse = z.object({
  error: z.object({ code: z.enum(codes), message: z.string() }),
});
export type ErrorResponse = z.infer<typeof ErrorResponse>;
