import * as z from "zod";
import { ApiError } from "@fogline/shared/errors";

/** zValidator hook: a failed query parse becomes our 400 envelope instead of zod's raw error. */
export const queryHook = (result: { success: boolean; error?: unknown }) => {
  if (!result.success) {
    const detail = result.error instanceof z.ZodError ? z.prettifyError(result.error) : "invalid query";
    throw new ApiError("invalid_query", detail.replace(/\n/g, "; "));
  }
};
