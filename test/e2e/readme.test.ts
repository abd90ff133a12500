/**
 * The shell examples of the README and of the pages that hold the rest of its former content
 * (docs/api.md: the API; docs/reliability.md: observability), run as written against `npm start` (only the host and port are swapped for
 * the test stack's), so they cannot rot; and the sample answer in docs/api.md checked against
 * the response schema.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { ClassifyResponse } from "../../workers/src/schemas/classify.js";
import { parseManifest } from "@fogline/shared/schemas/manifest";

const ROOT = resolve(import.meta.dirname, "../..");
/** The pages whose examples run here. */
const PAGES = ["README.md", "docs/api.md", "docs/reliability.md"];
const TEXT = PAGES.map((p) => readFileSync(join(ROOT, p), "utf8")).join("\n");
const API_PAGE = readFileSync(join(ROOT, "docs", "api.md"), "utf8");
const EDGE = "http://127.0.0.1:8787";

/**
 * Shell commands of those pages' ```sh blocks (continuation lines joined) that are client calls
 * to the local edge. Only commands that start with `curl`, `printf` or `npx fogline` are ever
 * run: never an install, a deploy or a server start.
 */
function examples(): string[] {
  const out: string[] = [];
  for (const block of TEXT.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, " ");
    for (const line of joined.split("\n")) {
      const cmd = line.trim();
      const client = /^(curl|printf) /.test(cmd) ? cmd.includes(EDGE) : cmd.startsWith("npx fogline ");
      // one client call each (a pipe is fine): no command lists
      if (client && !/&&|;|\|\|/.test(cmd)) out.push(cmd);
    }
  }
  return [...new Set(out)];
}

describe("README, docs/api.md and docs/reliability.md examples", () => {
  const cmds = examples();

  it("has curl, OIP and CLI examples", () => {
    expect(cmds.filter((c) => c.startsWith("curl ")).length).toBeGreaterThanOrEqual(5);
    expect(cmds.some((c) => c.includes("/v2/models/cifar10/infer"))).toBe(true);
    expect(cmds.some((c) => c.startsWith("npx fogline classify"))).toBe(true);
  });

  it.each(cmds)("%s", (cmd) => {
    const edge = inject("edgeUrl");
    // from the repository root, as a reader runs them: the sample images are examples/*
    const r = spawnSync("bash", ["-o", "pipefail", "-c", cmd.replaceAll(EDGE, edge)], {
      cwd: ROOT,
      env: { ...process.env, FOGLINE_URL: edge, npm_config_offline: "true" },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
    const out = r.stdout.trim();
    expect(out.length).toBeGreaterThan(0);
    if (out.startsWith("{") || out.startsWith("[")) {
      const body = JSON.parse(out);
      expect(Array.isArray(body) ? body.filter((x) => x.error) : body.error, out.slice(0, 500)).toEqual(Array.isArray(body) ? [] : undefined);
      if (Array.isArray(body)) for (const { file: _file, ...answer } of body) ClassifyResponse.parse(answer);
      else if (cmd.startsWith("curl") && cmd.includes("/v1/classify")) ClassifyResponse.parse(body);
    }
  });

  it("shows a 200 answer of /v1/classify that matches the response schema and the shipped model", async () => {
    const block = /200 response:\s*```json\n([\s\S]*?)```/.exec(API_PAGE);
    expect(block).not.toBeNull();
    const sample = ClassifyResponse.parse(JSON.parse(block![1]!));
    // the figures a reader compares with their own answer come from the shipped manifest ...
    const manifest = parseManifest(JSON.parse(readFileSync(join(ROOT, "models", sample.model.name, "manifest.json"), "utf8")));
    expect(sample.model.version).toBe(manifest.version);
    expect(manifest.fingerprint.startsWith(sample.model.fingerprint.replace("...", ""))).toBe(true);
    expect(sample.exit.threshold).toBe(Number(manifest.exit.threshold.toFixed(4)));
    expect(sample.ood?.threshold).toBe(Number(manifest.ood!.thresholds[sample.exit.at].toFixed(4)));
    // ... and the answer is what the first example (examples/cat.jpg) gets today
    const res = await fetch(`${inject("edgeUrl")}/v1/classify`, {
      method: "POST",
      headers: { "content-type": "image/jpeg" },
      body: readFileSync(join(ROOT, "examples", "cat.jpg")),
    });
    const live = ClassifyResponse.parse(await res.json());
    expect([live.label, live.exit.at, live.engine, live.ood?.flagged]).toEqual([sample.label, sample.exit.at, sample.engine, sample.ood?.flagged]);
    expect(live.top.map((t) => t.label).slice(0, 2)).toEqual(sample.top.map((t) => t.label));
  });
});
