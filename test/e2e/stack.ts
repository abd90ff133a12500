/**
 * globalSetup of the e2e project: the whole stack as a user runs it, `npm start`
 * (scripts/start.ts: the Node cloud + `wrangler dev`, through scripts/lib/stack.ts), on free ports with a test secret.
 * The browser, OIP, CLI and README tests talk to it over real HTTP.
 */
import type { TestProject } from "vitest/node";
import { freePort, spawnStart } from "../../scripts/lib/stack.js";
import { TEST_SECRET } from "../cloud-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    edgeUrl: string;
    /** the stack's cloud half (memory-refused.test.ts points a second Worker at it) */
    cloudUrl: string;
    /** pid of scripts/start.ts: its descendants are the cloud and workerd (memory.test.ts) */
    stackPid: number;
  }
}

export default async function setup(project: TestProject) {
  const [edgePort, cloudPort] = [await freePort(), await freePort()];
  const stack = await spawnStart({
    edgePort,
    cloudPort,
    env: { FOGLINE_HMAC_SECRET: TEST_SECRET },
    detached: true, // its own process group, so the teardown stops wrangler's workerd too
    timeoutMs: 180_000,
  });
  project.provide("edgeUrl", `http://127.0.0.1:${edgePort}`);
  project.provide("cloudUrl", `http://127.0.0.1:${cloudPort}`);
  project.provide("stackPid", stack.pid);
  // start.ts stops both halves on SIGTERM; the whole group is killed if it has not after 10 s
  return () => stack.stop({ signal: "SIGTERM", forceAfterMs: 10_000, forceGroup: true });
}
