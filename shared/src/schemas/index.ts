export * from "./classify.js";
export * from "./error.js";
export * from "./manifest.js";
export * from "./models.js";
export * from "./tail.js";
export * from "./oip.js";
