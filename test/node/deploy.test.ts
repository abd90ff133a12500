/**
 * The deploy guide's artefacts (docs/deploy.md): the bundled cloud server that cloud/Dockerfile
 * and the systemd unit run, the Dockerfile's inputs, the unit file, and the guide's links.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_SECRET } from "../cloud-server.js";
import { modelsDir } from "../models.generated.js";

const ROOT = resolve(import.meta.dirname, "../..");
const OUT = join(ROOT, "build", "test-cloud", "server.mjs");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

afterAll(() => rmSync(dirname(OUT), { recursive: true, force: true }));

describe("scripts/build-cloud.ts (what cloud/Dockerfile and the systemd unit run)", () => {
  it("bundles a cloud server that starts with plain node and serves /healthz", async () => {
    const build = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-cloud.ts", OUT], { cwd: ROOT, encoding: "utf8" });
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
    expect(dockerfile).toMatch(/RUN node --import tsx scripts\/build-cloud\.ts/);
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

describe("npm run deploy (scripts/deploy.ts): no dev CLOUD_URL in production", () => {
  const deploy = (args: string[], cloudUrl?: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };
    delete env.CLOUD_URL;
    if (cloudUrl !== undefined) env.CLOUD_URL = cloudUrl;
    return spawnSync(process.execPath, ["--import", "tsx", "scripts/deploy.ts", ...args], { cwd: ROOT, env, encoding: "utf8" });
  };

  it("is what `npm run deploy` runs, and wrangler.toml ships no CLOUD_URL of its own", () => {
    expect(JSON.parse(read("package.json")).scripts.deploy).toBe("node --import tsx scripts/deploy.ts");
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

/**
 * The guard of every `wrangler deploy`, `npm run deploy` or not: wrangler.toml's [build] command
 * (scripts/check-deploy-config.ts). These run real deploys, not --dry-run (a dry run only reports
 * the verdict), made harmless: no credentials (a fresh HOME, no CLOUDFLARE_* variables, stdin not
 * a terminal) and the API base URL on a closed local port. wrangler runs the custom build before
 * it asks for credentials, so a refused deploy ends with our message, and one the guard lets
 * through ends at wrangler's own "necessary to set a CLOUDFLARE_API_TOKEN": the guard, and
 * nothing else, is what stopped the refused ones.
 */
describe("a bare `wrangler deploy` (wrangler.toml [build]): no CLOUD_URL but https in production", () => {
  const wranglerJs = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
  const home = mkdtempSync(join(tmpdir(), "fogline-wrangler-home-"));
  // a config with environments, in the git-ignored build/: the repo's own plus two environments
  const envConfig = join(ROOT, "build", "test-deploy-config", "wrangler.toml");
  mkdirSync(dirname(envConfig), { recursive: true });
  writeFileSync(
    envConfig,
    read("wrangler.toml").replace(/^main = "(.*)"$/m, 'main = "../../$1"') +
      '\n[env.other]\nworkers_dev = true\n\n[env.production.vars]\nCLOUD_URL = "https://fogline-cloud.example.com"\n\n[env.staging.vars]\nCLOUD_URL = "http://127.0.0.1:8788"\n',
  );
  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(dirname(envConfig), { recursive: true, force: true });
  });

  const wrangler = (args: string[], extraEnv: Record<string, string> = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("CLOUDFLARE_") || k === "CLOUD_URL" || k === "WRANGLER_COMMAND") delete env[k];
    Object.assign(env, { HOME: home, XDG_CONFIG_HOME: home, CLOUDFLARE_API_BASE_URL: "http://127.0.0.1:9/client/v4", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" }, extraEnv);
    const r = spawnSync(process.execPath, [wranglerJs, ...args], { cwd: ROOT, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 90_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const NO_TOKEN = /necessary to set a CLOUDFLARE_API_TOKEN/;

  it("is the first step of wrangler.toml's [build] command", () => {
    expect(read("wrangler.toml")).toMatch(/^command = "node --import tsx scripts\/check-deploy-config\.ts && /m);
  });

  it.each<[string, string[], Record<string, string>, RegExp]>([
    ["no CLOUD_URL (the repo's wrangler.toml as it is)", [], {}, /no CLOUD_URL/],
    ["the dev address", ["--var", "CLOUD_URL:http://127.0.0.1:8788"], {}, /must be https/],
    ["loopback over https", ["--var=CLOUD_URL:https://localhost"], {}, /points at this machine/],
    ["DEV_CLOSE_CONNECTIONS", ["--var", "CLOUD_URL:https://fogline-cloud.example.com", "DEV_CLOSE_CONNECTIONS:true"], {}, /DEV_CLOSE_CONNECTIONS \(from --var\)/],
    ["an environment without CLOUD_URL (vars are not inherited)", ["--config", envConfig, "--env", "other"], {}, /no CLOUD_URL/],
    ["an environment with an http CLOUD_URL", ["--config", envConfig, "-e", "staging"], {}, /must be https.*\[env\.staging\.vars\]/],
    ["the same, chosen by CLOUDFLARE_ENV", ["--config", envConfig], { CLOUDFLARE_ENV: "staging" }, /must be https/],
  ])("refuses to build, before asking for credentials: %s", (_, args, extraEnv, why) => {
    const r = wrangler(["deploy", ...args], extraEnv);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toMatch(/\[fogline deploy check\] refusing to build for wrangler deploy/);
    expect(r.out).toMatch(why);
    expect(r.out).toMatch(/Running custom build .* failed/);
    expect(r.out).not.toMatch(NO_TOKEN);
  }, 120_000);

  it.each<[string, string[], Record<string, string>, RegExp]>([
    ["--var CLOUD_URL:https://...", ["--var", "CLOUD_URL:https://fogline-cloud.example.com"], {}, /CLOUD_URL https:\/\/fogline-cloud\.example\.com \(from --var\) ok/],
    ["--env production with CLOUD_URL in [env.production.vars]", ["--config", envConfig, "--env", "production"], {}, /wrangler deploy --env production: CLOUD_URL https:\/\/fogline-cloud\.example\.com \(from .*\[env\.production\.vars\]\) ok/],
    ["--var over an environment's http CLOUD_URL", ["--config", envConfig, "--env", "staging", "--var", "CLOUD_URL:https://fogline-cloud.example.com"], {}, /\(from --var\) ok/],
  ])("lets %s through to wrangler's credential check", (_, args, extraEnv, ok) => {
    const r = wrangler(["deploy", ...args], extraEnv);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toMatch(ok);
    expect(r.out).toMatch(NO_TOKEN);
  }, 120_000);

  it("reports, and still builds, under --dry-run (the bundle checks of npm run test:bundle, bench, bundle.test.ts)", () => {
    const out = mkdtempSync(join(tmpdir(), "fogline-dry-"));
    try {
      const r = wrangler(["deploy", "--dry-run", "--outdir", out]);
      expect(r.status, r.out).toBe(0);
      expect(r.out).toMatch(/a real deploy would be refused: no CLOUD_URL/);
      expect(r.out).toMatch(/--dry-run: exiting now/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
