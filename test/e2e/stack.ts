/**
 * globalSetup of the e2e project: the whole stack as a user runs it, `npm start`
 * (scripts/start.mjs: the Node cloud + `wrangler dev`), on free ports with a test secret.
 * The browser, OIP, CLI and README tests talk to it over real HTTP.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { TEST_SECRET } from "../cloud-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    edgeUrl: string;
    /** the stack's cloud half (memory-refused.test.ts points a second Worker at it) */
    cloudUrl: string;
    /** pid of scripts/start.mjs: its descendants are the cloud and workerd (memory.test.ts) */
    stackPid: number;
  }
}

const ROOT = resolve(import.meta.dirname, "../..");

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export default async function setup(project: TestProject) {
  const [edgePort, cloudPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["scripts/start.mjs"], {
    cwd: ROOT,
    env: { ...process.env, FOGLINE_EDGE_PORT: String(edgePort), FOGLINE_CLOUD_PORT: String(cloudPort), FOGLINE_HMAC_SECRET: TEST_SECRET },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so the teardown stops wrangler's workerd too
  });
  let log = "";
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`npm start was not ready in 180 s:\n${log}`)), 180_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (/\[fogline\] ready: /.test(log)) {
        clearTimeout(timer);
        res();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`npm start exited with ${code}:\n${log}`));
    });
  });
  project.provide("edgeUrl", `http://127.0.0.1:${edgePort}`);
  project.provide("cloudUrl", `http://127.0.0.1:${cloudPort}`);
  project.provide("stackPid", child.pid!);
  return async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM"); // start.mjs stops both halves
    const force = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 10_000);
    await exited;
    clearTimeout(force);
  };
}
