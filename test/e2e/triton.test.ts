/**
 * NVIDIA's Triton HTTP client (tritonclient.http, Python, pinned in test/triton/requirements.txt)
 * against `npm start`, with its defaults: the binary tensor data extension, its error parsing
 * (`{"error": "<message>"}`), and the Triton endpoints it calls. test/triton/client.py holds the
 * checks and prints one line each; this runs it and fails with its output.
 * `npm test` installs the client into .venv-triton first (`npm run test:pyenv`, scripts/python-env.sh).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { DEFAULT_MODEL } from "../shared/fixtures.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PYTHON = join(ROOT, ".venv-triton", "bin", "python");

beforeAll(() => {
  // quick, and a no-op when the environments are current; `npm test` ran it already
  const env = spawnSync("bash", [join(ROOT, "scripts", "python-env.sh")], { cwd: ROOT, encoding: "utf8", timeout: 170_000 });
  if (env.status !== 0) throw new Error(`scripts/python-env.sh failed (${env.status ?? env.signal}):\n${env.stdout}\n${env.stderr}`);
  if (!existsSync(PYTHON)) throw new Error(`scripts/python-env.sh made no ${PYTHON}`);
}, 180_000);

describe("tritonclient.http with its defaults", () => {
  it("health, metadata, config, stats, infer (binary and JSON, FP32 batches of 1 and 64, BYTES images) and clean errors", () => {
    const r = spawnSync(PYTHON, [join(ROOT, "test", "triton", "client.py"), inject("edgeUrl"), "--model", DEFAULT_MODEL], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 100_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    console.log(r.stdout.trim());
    expect(r.status, out).toBe(0);
    expect(r.stdout).toMatch(/^passed: tritonclient/m);
    expect(r.stdout).not.toMatch(/^FAIL/m);
  }, 120_000);
});
