import type { CloudModel } from "./models.js";

export interface CloudOptions {
  models: Map<string, CloudModel>;
  /** FOGLINE_HMAC_SECRET: the key edge->cloud calls are signed with */
  secret: string;
  /** replay window for signature timestamps, seconds */
  maxSkewS: number;
  /** largest batch accepted in one tail call */
  maxBatch: number;
  /** clock in ms (tests move it) */
  now: () => number;
}

export type CloudEnv = { Variables: { requestId: string; cloud: CloudOptions } };
