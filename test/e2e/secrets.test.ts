/**
 * `npm start` with the secret in its environment (test/e2e/stack.ts), as a user with their own
 * secret runs it: both halves ready with it, and no process shows it on its command line (`ps`
 * shows every user's command lines; wrangler gets it from a private --env-file instead).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, inject, it } from "vitest";
import { TEST_SECRET } from "../cloud-server.js";

describe("npm start and the HMAC secret", () => {
  it("is ready: the edge has a usable secret and CLOUD_URL", async () => {
    const res = await fetch(`${inject("edgeUrl")}/healthz`);
    const body = (await res.json()) as { status: string; problems?: unknown };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.problems).toBeUndefined();
  });

  it("answers from the cloud, so the edge signs with the cloud's secret", async () => {
    const { vectorsFor, DEFAULT_MODEL, base64ToBytes } = await import("../shared/fixtures.js");
    const png = vectorsFor(DEFAULT_MODEL).vectors.find((v) => v.contentType === "image/png")!;
    const res = await fetch(`${inject("edgeUrl")}/v1/classify?exit=cloud`, {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: base64ToBytes(png.imageBase64) as Uint8Array<ArrayBuffer>,
    });
    const body = (await res.json()) as { exit: { at: string }; degraded: boolean };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ exit: { at: "cloud" }, degraded: false });
  });

  it.skipIf(!existsSync("/proc/self/cmdline"))("is on no process's command line", () => {
    const offenders: string[] = [];
    const commands: string[] = [];
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      let cmd: string;
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      } catch {
        continue; // gone, or not ours to read
      }
      commands.push(cmd);
      if (cmd.includes(TEST_SECRET)) offenders.push(`${pid}: ${cmd.replace(TEST_SECRET, "<secret>").slice(0, 200)}`);
    }
    // the stack is running: its wrangler (handed a file instead) and its cloud are among those read
    expect(commands.some((c) => /wrangler\.js dev .*--env-file /.test(c))).toBe(true);
    expect(commands.some((c) => /cloud\/src\/server\.ts/.test(c))).toBe(true);
    expect(offenders).toEqual([]);
  });
});
