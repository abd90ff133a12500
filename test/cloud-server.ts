/**
 * Starts real cloud servers for the tests: the production entry point (cloud/src/server.ts) in
 * a child Node process, on a free port (scripts/lib/stack.ts spawnCloud). A child process keeps onnxruntime-node out of the
 * workers project's module pipeline and tests the server as deployed.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cloudPort, spawnCloud } from "../scripts/lib/stack.js";

/** 32 random bytes in hex, as `openssl rand -hex 32` makes them (both halves refuse weaker ones) */
export const TEST_SECRET = "d36bb0c0a77604d40fb1c10fe7466066baccecf278bedf2be7bba236251b020a";
/** another strong secret, for a cloud and an edge that disagree */
export const OTHER_SECRET = "899f73a095cc20b79e590a91022d96304991a061d39ba43252397d3811977b29";

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

export async function startCloud(modelsDir: string, opts: CloudProcessOptions = {}): Promise<RunningCloud> {
  const proc = spawnCloud({
    port: opts.port ?? 0,
    secret: opts.secret ?? TEST_SECRET,
    execArgv: opts.execArgv,
    env: { FOGLINE_LOG_LEVEL: "warn", ...opts.env, FOGLINE_MODELS_DIR: modelsDir },
  });
  const port = await cloudPort(proc, 60_000);
  return {
    port,
    close: () => proc.stop({ signal: "SIGTERM", forceAfterMs: null }),
    kill: () => proc.stop({ signal: "SIGKILL" }),
    log: () => proc.log(),
    exited: proc.exited,
    pid: proc.pid,
  };
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
