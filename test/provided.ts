/** Values test/global-setup.ts provides to the workers project (vitest inject). */
declare module "vitest" {
  export interface ProvidedContext {
    cloudPort: number;
    mismatchedCloudPort: number;
    closedPort: number;
    /** a cloud started with FOGLINE_MAX_BATCH=1 */
    smallBatchCloudPort: number;
    hmacSecret: string;
    /** test/outage.ts: stopwatch and kill/start control */
    controlPort: number;
    /** test/outage.ts: /delay/<ms>/ in front of the healthy cloud */
    slowCloudPort: number;
    /** test/outage.ts: a cloud the tests kill and restart */
    killableCloudPort: number;
  }
}

export {};
