/**
 * `fogline` (bin/fogline.mjs) against `npm start`: what a user types, exit codes included.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { manifests } from "../models.generated.js";
import { base64ToBytes, DEFAULT_MODEL, vectorsFor } from "../shared/fixtures.js";

const ROOT = resolve(import.meta.dirname, "../..");
const DIR = join(ROOT, "test-artifacts", "cli");
const labels = (manifests[DEFAULT_MODEL] as { labels: string[] }).labels;

function fogline(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin/fogline.mjs"), ...args], {
    cwd: DIR,
    env: { ...process.env, FOGLINE_URL: inject("edgeUrl"), ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  mkdirSync(DIR, { recursive: true });
  const vs = vectorsFor(DEFAULT_MODEL).vectors;
  writeFileSync(join(DIR, "a.png"), base64ToBytes(vs.find((v) => v.contentType === "image/png")!.imageBase64));
  const jpeg = vs.find((v) => v.contentType === "image/jpeg") ?? vs[1]!;
  writeFileSync(join(DIR, jpeg.contentType === "image/jpeg" ? "b.jpg" : "b.png"), base64ToBytes(jpeg.imageBase64));
  writeFileSync(join(DIR, "notes.txt"), "not an image");
});

const second = () => (vectorsFor(DEFAULT_MODEL).vectors.some((v) => v.contentType === "image/jpeg") ? "b.jpg" : "b.png");

describe("fogline classify", () => {
  it("prints label, score and exit point per file", () => {
    const r = fogline(["classify", "a.png", second()]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toMatch(/^file\s+label\s+score\s+exit\s+ood/);
    expect(lines).toHaveLength(3);
    for (const [line, file] of [[lines[1]!, "a.png"], [lines[2]!, second()]] as const) {
      const [f, label, score, exit, ood] = line.split(/\s+/);
      expect(f).toBe(file);
      expect(labels).toContain(label);
      expect(Number(score)).toBeGreaterThan(0);
      expect(["edge", "cloud"]).toContain(exit);
      expect(["yes", "no"]).toContain(ood);
    }
  });

  it("--json gives the full answers; --threshold 0 and --exit edge pick the path", () => {
    const cloud = fogline(["classify", "--json", "--threshold", "0", "a.png"]);
    expect(cloud.code, cloud.err).toBe(0);
    const [answer] = JSON.parse(cloud.out) as { file: string; label: string; exit: { at: string; threshold: number } }[];
    expect(answer).toMatchObject({ file: "a.png", exit: { at: "cloud", threshold: 0 } });
    const edge = JSON.parse(fogline(["classify", "--json", "--exit", "edge", "--model", DEFAULT_MODEL, "a.png"]).out);
    expect(edge[0].exit.at).toBe("edge");
  });

  it("reports a failed file on its line and exits 1", () => {
    const r = fogline(["classify", "a.png", "notes.txt", "missing.png"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/notes\.txt\s+error.*not_an_image/);
    expect(r.out).toMatch(/missing\.png\s+error.*file_unreadable/);
    expect(r.out).toMatch(/a\.png\s+\w+\s+0\.\d{3}\s+(edge|cloud)/);
  });

  it("exits 1 with the reason when the edge is unreachable", () => {
    const r = fogline(["classify", "--url", "http://127.0.0.1:9", "a.png"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/unreachable/);
  });

  it("exits 2 on usage errors, 0 for --help and --version", () => {
    expect(fogline(["classify"]).code).toBe(2);
    expect(fogline(["classify", "--exit", "sideways", "a.png"]).code).toBe(2);
    expect(fogline(["frobnicate"]).code).toBe(2);
    expect(fogline(["--help"])).toMatchObject({ code: 0, out: expect.stringMatching(/fogline classify <image\.\.\.>/) });
    expect(fogline(["--version"]).out.trim()).toBe(pkg.version);
  });
});

describe("fogline models and bench", () => {
  it("lists the served models", () => {
    const r = fogline(["models", "--json"]);
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(r.out) as { models: { name: string }[] }).models.map((m) => m.name)).toContain(DEFAULT_MODEL);
    expect(fogline(["models"]).out).toMatch(new RegExp(`^${DEFAULT_MODEL}\\s`, "m"));
  });

  it("measures latency percentiles and the edge share", () => {
    const r = fogline(["bench", "-n", "12", "-c", "3", "--json", "a.png", second()]);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as { requests: number; errors: number; edgeShare: number; latencyMs: { p50: number; p99: number } };
    expect(report).toMatchObject({ requests: 12, errors: 0 });
    expect(report.latencyMs.p99).toBeGreaterThanOrEqual(report.latencyMs.p50);
  });
});

describe("npx fogline", () => {
  it("runs this package's bin from the repository (package.json \"bin\")", () => {
    const r = spawnSync("npx", ["fogline", "--version"], { cwd: ROOT, env: { ...process.env, npm_config_offline: "true" }, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
