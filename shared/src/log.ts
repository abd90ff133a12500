/**
 * Structured logs: one JSON object per line, so Workers Logs, `wrangler tail`, journald or any
 * log shipper can index them. Every request line carries the request id the edge also sends to
 * the cloud (x-request-id), so one classification can be followed across both halves.
 */
import * as z from "zod";

export const LogLevel = z.enum(["debug", "info", "warn", "error", "silent"]);
export type LogLevel = z.infer<typeof LogLevel>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: Exclude<LogLevel, "silent">): boolean;
  log(level: Exclude<LogLevel, "silent">, msg: string, fields?: LogFields): void;
}

export function createLogger(role: "edge" | "cloud", level: LogLevel = "info"): Logger {
  const min = RANK[level];
  return {
    level,
    enabled: (l) => RANK[l] >= min,
    log(l, msg, fields) {
      if (RANK[l] < min) return;
      const line = JSON.stringify({ ts: new Date().toISOString(), level: l, role, msg, ...fields });
      if (l === "error") console.error(line);
      else if (l === "warn") console.warn(line);
      else console.log(line);
    },
  };
}
