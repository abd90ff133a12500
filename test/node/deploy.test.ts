/**
 * The deploy guide's artefacts (docs/deploy.md): the bundled cloud server that cloud/Dockerfile
 * and the systemd unit run, the Dockerfile's inputs, the unit file, and the guide's links.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_SECRET } from "../cloud-server.js";
import { modelsDir } from "../models.generated.js";

const ROOT = resolve(import.meta.dirname, "../..");
const OUT = join(ROOT, "build", "test-cloud", "server.mjs");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

afterAll(() => rmSync(dirname(OUT), { recursive: true, force: true }));

describe("scripts/build-cloud.mjs (what cloud/Dockerfile and the systemd unit run)", () => {
  it("bundles a cloud server that starts with plain node and serves /healthz", async () => {
    const build = spawnSync(process.execPath, ["scripts/build-cloud.mjs", OUT], { cwd: ROOT, encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const child = spawn(process.execPath, [OUT], {
      cwd: dirname(OUT),
      env: { ...process.env, FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_CLOUD_PORT: "0", FOGLINE_CLOUD_HOST: "127.0.0.1", FOGLINE_MODELS_DIR: modelsDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const port = await new Promise<number>((res, rej) => {
        let log = "";
        const timer = setTimeout(() => rej(new Error(`no "listening" line in 20 s:\n${log}`)), 20_000);
        const onData = (b: Buffer) => {
          log += b.toString();
          const m = /listening on http:\/\/[^:]+:(\d+)/.exec(log);
          if (m) {
            clearTimeout(timer);
            res(Number(m[1]));
          }
        };
        child.stdout!.on("data", onData);
        child.stderr!.on("data", onData);
        child.once("exit", (code) => rej(new Error(`exited with ${code}:\n${log}`)));
      });
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { status: string; role: string };
      expect(health).toMatchObject({ status: "ok", role: "cloud" });
    } finally {
      child.kill("SIGTERM");
    }
  });
});

describe("cloud/Dockerfile", () => {
  const dockerfile = read("cloud/Dockerfile");
  const ignore = read(".dockerignore").split("\n").filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));

  it("copies only files that exist and that .dockerignore lets into the context", () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      if (src === "models") continue; // re-included file by file: models/*/manifest.json, models/*/cloud.onnx
      expect(ignore.some((p) => p === src || src.startsWith(`${p}/`)), `${src} is excluded by .dockerignore`).toBe(true);
    }
    expect(ignore).toEqual(expect.arrayContaining(["models/*/manifest.json", "models/*/cloud.onnx"]));
  });

  it("runs the bundle as a non-root user, listening on all interfaces, with a health check", () => {
    expect(dockerfile).toMatch(/RUN node scripts\/build-cloud\.mjs/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/FOGLINE_CLOUD_HOST=0\.0\.0\.0/);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
  });
});

describe("deploy/fogline-cloud.service", () => {
  const unit = read("deploy/fogline-cloud.service");

  it("sets only settings the cloud reads and starts the bundle", () => {
    const names = [...unit.matchAll(/^Environment=(\w+)=/gm)].map((m) => m[1]!);
    const config = read("cloud/src/config.ts") + read("cloud/src/server.ts");
    for (const n of names.filter((x) => x.startsWith("FOGLINE_"))) expect(config, n).toContain(n);
    expect(unit).toMatch(/^ExecStart=.*node .*\/server\.mjs$/m);
    expect(unit).toMatch(/^EnvironmentFile=/m);
  });

  it.skipIf(spawnSync("systemd-analyze", ["--version"]).status !== 0)("passes systemd-analyze verify", () => {
    const r = spawnSync("systemd-analyze", ["verify", join(ROOT, "deploy/fogline-cloud.service")], { encoding: "utf8" });
    // a host without the unit's paths may warn about them; only syntax errors fail
    expect(r.stderr).not.toMatch(/Unknown (key|section)|Failed to parse|Invalid/i);
  });
});

describe("docs/deploy.md", () => {
  it("is linked from the README and links only files that exist", () => {
    expect(read("README.md")).toContain("(docs/deploy.md)");
    const doc = read("docs/deploy.md");
    for (const m of doc.matchAll(/\]\((\.\.\/[^)#]+)\)/g)) expect(existsSync(join(ROOT, "docs", m[1]!)), m[1]).toBe(true);
  });
});

describe("npm run deploy (scripts/deploy.mjs): no dev CLOUD_URL in production", () => {
  const deploy = (args: string[], cloudUrl?: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };
    delete env.CLOUD_URL;
    if (cloudUrl !== undefined) env.CLOUD_URL = cloudUrl;
    return spawnSync(process.execPath, ["scripts/deploy.mjs", ...args], { cwd: ROOT, env, encoding: "utf8" });
  };

  it("is what `npm run deploy` runs, and wrangler.toml ships no CLOUD_URL of its own", () => {
    expect(JSON.parse(read("package.json")).scripts.deploy).toBe("node scripts/deploy.mjs");
    const vars = /^\[vars\]\n([\s\S]*?)(?=^\[)/m.exec(read("wrangler.toml"))![1]!;
    expect(vars).not.toMatch(/^\s*CLOUD_URL\s*=/m);
    expect(read("wrangler.toml")).not.toMatch(/^\s*CLOUD_URL\s*=\s*"http:\/\/(127\.|localhost)/m);
  });

  it.each<[string, string[], string | undefined, RegExp]>([
    ["no CLOUD_URL at all", [], undefined, /no CLOUD_URL/],
    ["the dev address", [], "http://127.0.0.1:8788", /must be https/],
    ["loopback over https", [], "https://127.0.0.1", /points at this machine/],
    ["localhost", ["--var", "CLOUD_URL:https://localhost"], undefined, /points at this machine/],
    ["IPv6 loopback", [], "https://[::1]/", /points at this machine/],
    ["a bare IP address", [], "https://203.0.113.7", /bare IP address/],
    ["a custom https port", [], "https://fogline-cloud.example.com:8443", /port 8443/],
    ["not a URL", [], "fogline-cloud", /not a URL/],
    ["DEV_CLOSE_CONNECTIONS", ["--var", "DEV_CLOSE_CONNECTIONS:true"], "https://fogline-cloud.example.com", /DEV_CLOSE_CONNECTIONS/],
  ])("refuses %s before running wrangler", (_, args, cloudUrl, why) => {
    const r = deploy([...args, "--dry-run"], cloudUrl);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/refusing to deploy/);
    expect(r.stderr).toMatch(why);
    expect(r.stdout + r.stderr).not.toMatch(/wrangler \d/); // wrangler's banner: it never started
  });

  it("deploys (--dry-run) with an https CLOUD_URL, bound as the Worker's CLOUD_URL", () => {
    const out = mkdtempSync(join(tmpdir(), "fogline-deploy-"));
    try {
      const r = deploy(["--dry-run", "--outdir", out], "https://fogline-cloud.example.com");
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/CLOUD_URL https:\/\/fogline-cloud\.example\.com \(from the CLOUD_URL environment variable\)/);
      // wrangler lists the bindings (hiding --var values) and stops at --dry-run
      expect(r.stdout).toMatch(/env\.CLOUD_URL \(/);
      expect(r.stdout).toMatch(/--dry-run: exiting now/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
