/**
 * Starts real cloud servers for the tests: the production entry point (cloud/src/server.ts) in
 * a child Node process, on a free port. A child process keeps onnxruntime-node out of the
 * workers project's module pipeline and tests the server as deployed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** 32 random bytes in hex, as `openssl rand -hex 32` makes them (both halves refuse weaker ones) */
export const TEST_SECRET = "d36bb0c0a77604d40fb1c10fe7466066baccecf278bedf2be7bba236251b020a";
/** another strong secret, for a cloud and an edge that disagree */
export const OTHER_SECRET = "899f73a095cc20b79e590a91022d96304991a061d39ba43252397d3811977b29";
const ROOT = resolve(import.meta.dirname, "..");

export interface RunningCloud {
  port: number;
  /** SIGTERM, and wait for the exit */
  close(): Promise<void>;
  /** SIGKILL, as a crash or an OOM kill would: no clean shutdown */
  kill(): Promise<void>;
  /** everything the process printed so far */
  log(): string;
  /** resolves with the exit code (or signal name) when the process ends */
  exited: Promise<number | string>;
  pid: number;
}

export interface CloudProcessOptions {
  secret?: string;
  /** 0 (default) picks a free port */
  port?: number;
  /** extra environment, e.g. FOGLINE_LOG_LEVEL */
  env?: Record<string, string>;
  /** extra node flags before the entry point, e.g. ["--import", "<a fault-injecting preload>"] */
  execArgv?: string[];
}

export function startCloud(modelsDir: string, opts: CloudProcessOptions = {}): Promise<RunningCloud> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", ...(opts.execArgv ?? []), "cloud/src/server.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      FOGLINE_LOG_LEVEL: "warn",
      ...opts.env,
      FOGLINE_MODELS_DIR: modelsDir,
      FOGLINE_HMAC_SECRET: opts.secret ?? TEST_SECRET,
      FOGLINE_CLOUD_PORT: String(opts.port ?? 0),
      FOGLINE_CLOUD_HOST: "127.0.0.1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const exited = new Promise<number | string>((r) => child.once("exit", (code, signal) => r(code ?? signal ?? -1)));
  const stop = (signal: NodeJS.Signals) => async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`cloud did not start in 60 s:\n${log}`)), 60_000);
    let started = false;
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(log);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolvePromise({ port: Number(m[1]), close: stop("SIGTERM"), kill: stop("SIGKILL"), log: () => log, exited, pid: child.pid! });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`cloud exited with ${code}:\n${log}`));
    });
  });
}

/**
 * A copy of the models folder whose manifests claim another export (same graphs, different
 * fingerprint and version): the cloud half of a mismatched deployment.
 */
export function mismatchedModelsDir(modelsDir: string): string {
  const out = mkdtempSync(join(tmpdir(), "fogline-mismatch-"));
  for (const name of readdirSync(modelsDir)) {
    const src = join(modelsDir, name);
    if (!existsSync(join(src, "manifest.json"))) continue;
    mkdirSync(join(out, name));
    const manifest = JSON.parse(readFileSync(join(src, "manifest.json"), "utf8"));
    copyFileSync(join(src, manifest.files.cloud.path), join(out, name, manifest.files.cloud.path));
    manifest.version = `${manifest.version}-other`;
    manifest.fingerprint = "0".repeat(64);
    writeFileSync(join(out, name, "manifest.json"), JSON.stringify(manifest));
  }
  return out;
}
