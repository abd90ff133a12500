/**
 * The one harness that runs Fogline's processes: the cloud half (`node --import tsx
 * cloud/src/server.ts`), the edge in `wrangler dev`, both together as `npm start` runs them
 * (startStack), and `npm start` itself as a child (spawnStart: what the e2e tests and the load
 * test drive). Used by scripts/start.ts, scripts/bench.ts, scripts/loadtest.ts, test/e2e/stack.ts
 * and test/cloud-server.ts, so ports, secrets, readiness and shutdown are handled in one place.
 *
 * Secrets never go on a command line (which `ps` shows to every user): the cloud gets its secret in
 * its environment, wrangler in a file (.dev.vars, or a private mode-600 file in a fresh mode-700
 * folder handed over with --env-file).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const HOST = "127.0.0.1";
/** the repository root (this file is scripts/lib/stack.ts) */
export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const require = createRequire(import.meta.url);
export const WRANGLER_JS = require.resolve("wrangler/bin/wrangler.js");

/** A port nobody listens on right now (the OS picks it). */
export function freePort(host: string = HOST): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/** 32 random bytes in hex (`openssl rand -hex 32`): what both halves accept (shared/src/secret.ts). */
export function newSecret(): string {
  return randomBytes(32).toString("hex");
}

/** A private env file (mode 600 in a fresh mode-700 folder) holding FOGLINE_HMAC_SECRET, for wrangler's --env-file. */
export function privateSecretFile(secret: string, prefix = "fogline-"): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, "secrets.env");
  writeFileSync(file, `FOGLINE_HMAC_SECRET=${secret}\n`, { mode: 0o600 });
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.on("exit", remove);
  return { file, remove };
}

export interface ProcessOptions {
  /** for messages: "cloud", "edge", ... */
  name: string;
  cwd: string;
  /** the arguments of `node` (process.execPath) */
  args: string[];
  /** added to process.env */
  env?: Record<string, string | undefined>;
  /** "inherit": straight to this terminal; "pipe" (default): kept for log() and copied to `tee` */
  output?: "inherit" | "pipe";
  /** keep only the last this many characters of the output (default: all) */
  keepChars?: number;
  tee?: NodeJS.WritableStream;
  /** its own process group, so that stop({ forceGroup }) also reaches its descendants */
  detached?: boolean;
}

export interface StopOptions {
  signal?: NodeJS.Signals;
  /** then SIGKILL after this long (default 5 s; null: never) */
  forceAfterMs?: number | null;
  /** SIGKILL the whole process group (a detached process and all it started) */
  forceGroup?: boolean;
  /** stop waiting (without SIGKILL) after this long */
  giveUpAfterMs?: number;
}

/** Every process started here and still running: stopAll() ends them (a script's Ctrl-C or failure). */
const running = new Set<NodeProcess>();

/** A Node child process with its output kept, its exit as a promise, and a clean stop. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** the exit code, or the signal's name */
  readonly exited: Promise<number | string>;
  private out = "";
  private readonly listeners = new Set<(text: string) => void>();

  constructor(opts: ProcessOptions) {
    this.name = opts.name;
    const pipe = (opts.output ?? "pipe") === "pipe";
    // stdin is not shared: Ctrl-C reaches the script (and its process group) as SIGINT
    this.child = spawn(process.execPath, opts.args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", pipe ? "pipe" : "inherit", pipe ? "pipe" : "inherit"],
      detached: opts.detached ?? false,
    });
    this.exited = new Promise((r) => this.child.once("exit", (code, signal) => r(code ?? signal ?? -1)));
    running.add(this);
    void this.exited.then(() => running.delete(this));
    if (pipe) {
      const keep = (chunk: Buffer) => {
        const text = chunk.toString();
        this.out += text;
        if (opts.keepChars !== undefined && this.out.length > opts.keepChars) this.out = this.out.slice(-opts.keepChars);
        for (const l of this.listeners) l(this.out);
      };
      this.child.stdout!.on("data", keep);
      this.child.stderr!.on("data", keep);
      if (opts.tee) {
        this.child.stdout!.pipe(opts.tee);
        this.child.stderr!.pipe(opts.tee);
      }
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** what it printed so far (stdout and stderr; "" with output "inherit") */
  log(): string {
    return this.out;
  }

  /** Resolves with the first match of `pattern` in the output; rejects when the process exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs: number, what = `${this.name} was not ready in ${timeoutMs / 1000} s`): Promise<RegExpExecArray> {
    return new Promise((res, rej) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
        this.child.off("exit", onExit);
      };
      const check = (text: string) => {
        const m = pattern.exec(text);
        if (m) {
          done();
          res(m);
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        rej(new Error(`${this.name} exited with ${code ?? signal}:\n${this.out}`));
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`${what}:\n${this.out}`));
      }, timeoutMs);
      this.listeners.add(check);
      this.child.once("exit", onExit);
      check(this.out);
      if (!this.running) onExit(this.child.exitCode, this.child.signalCode);
    });
  }

  /** Sends `signal` (SIGTERM), SIGKILLs after `forceAfterMs` (5 s), and resolves when it has exited. */
  async stop(o: StopOptions = {}): Promise<void> {
    if (!this.running) return;
    const forceAfterMs = o.forceAfterMs === undefined ? 5000 : o.forceAfterMs;
    const force =
      forceAfterMs === null
        ? undefined
        : setTimeout(() => {
            if (o.forceGroup) process.kill(-this.pid, "SIGKILL");
            else this.child.kill("SIGKILL");
          }, forceAfterMs);
    this.child.kill(o.signal ?? "SIGTERM");
    const giveUp = o.giveUpAfterMs === undefined ? undefined : new Promise<void>((r) => setTimeout(r, o.giveUpAfterMs).unref());
    await Promise.race([this.exited, ...(giveUp ? [giveUp] : [])]);
    if (force) clearTimeout(force);
  }
}

/** Stops every process started here that still runs. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/**
 * Polls `url` until it answers 2xx: true; false when `proc` exits first, `timeoutMs` passes or
 * `cancelled()` turns true.
 */
export async function waitUntilReady(url: string, proc: NodeProcess, timeoutMs: number, o: { intervalMs?: number; cancelled?: () => boolean } = {}): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && proc.running && !o.cancelled?.()) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 500));
  }
  return false;
}

/** waitUntilReady, throwing with the process's output when it is not. */
export async function waitForUrl(url: string, proc: NodeProcess, timeoutMs: number, intervalMs = 100): Promise<void> {
  if (await waitUntilReady(url, proc, timeoutMs, { intervalMs })) return;
  if (!proc.running) throw new Error(`${proc.name} exited during start-up:\n${proc.log()}`);
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms:\n${proc.log()}`);
}

export interface CloudOptions extends Omit<ProcessOptions, "name" | "args" | "cwd"> {
  name?: string;
  cwd?: string;
  host?: string;
  /** 0 picks a free one; read it with cloudPort() */
  port: number;
  secret: string;
  /** node flags before the entry point, e.g. ["--import", "<a fault-injecting preload>"] */
  execArgv?: string[];
}

/** The cloud half as deployed (cloud/src/server.ts under tsx), its secret in its environment. */
export function spawnCloud(o: CloudOptions): NodeProcess {
  return new NodeProcess({
    ...o,
    name: o.name ?? "cloud",
    cwd: o.cwd ?? ROOT,
    args: ["--import", "tsx", ...(o.execArgv ?? []), "cloud/src/server.ts"],
    env: { ...o.env, FOGLINE_HMAC_SECRET: o.secret, FOGLINE_CLOUD_PORT: String(o.port), FOGLINE_CLOUD_HOST: o.host ?? HOST },
  });
}

/** The port a piped cloud listens on, from its start-up line (cloud/src/server.ts). */
export async function cloudPort(cloud: NodeProcess, timeoutMs = 60_000): Promise<number> {
  const m = await cloud.waitForOutput(/listening on http:\/\/[^:]+:(\d+)/, timeoutMs, `${cloud.name} did not start in ${timeoutMs / 1000} s`);
  return Number(m[1]);
}

export interface EdgeOptions extends Omit<ProcessOptions, "name" | "args" | "cwd"> {
  name?: string;
  cwd?: string;
  host?: string;
  port: number;
  /** another Worker entry than wrangler.toml's main (the bench's scripts/bench/worker.ts) */
  entry?: string;
  /** --var KEY:VALUE each */
  vars: Record<string, string>;
  /** --env-file each, in order (later ones win) */
  envFiles?: string[];
}

/** The edge in `wrangler dev` (workerd). */
export function spawnEdge(o: EdgeOptions): NodeProcess {
  const args = [WRANGLER_JS, "dev", ...(o.entry ? [o.entry] : []), "--ip", o.host ?? HOST, "--port", String(o.port), "--show-interactive-dev-session=false"];
  args.push(...Object.entries(o.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]), ...(o.envFiles ?? []).flatMap((f) => ["--env-file", f]));
  return new NodeProcess({ ...o, name: o.name ?? "edge", cwd: o.cwd ?? ROOT, args, env: { WRANGLER_SEND_METRICS: "false", ...o.env } });
}

export interface StackOptions {
  cwd?: string;
  host?: string;
  /** 0 picks a free port */
  edgePort: number;
  cloudPort: number;
  /** default: newSecret() */
  secret?: string;
  /** the secret is already in `cwd`/.dev.vars, which wrangler dev reads by itself; otherwise a
   * private file goes to wrangler after .dev.vars (whose other entries, METRICS_TOKEN, still apply) */
  secretInDevVars?: boolean;
  /** --var of the edge besides CLOUD_URL */
  edgeVars?: Record<string, string>;
  cloudEnv?: Record<string, string>;
  edgeEnv?: Record<string, string>;
  output?: "inherit" | "pipe";
}

export interface Stack {
  host: string;
  edgePort: number;
  cloudPort: number;
  edgeUrl: string;
  cloudUrl: string;
  secret: string;
  cloud: NodeProcess;
  edge: NodeProcess;
  /** both /healthz answering 2xx (the cloud within 120 s, the edge within 180 s): which are */
  ready(o?: { cancelled?: () => boolean }): Promise<{ cloud: boolean; edge: boolean }>;
  /** SIGTERM both (SIGKILL after 5 s), wait for them, remove the private secret file */
  stop(): Promise<void>;
}

/** The cloud, then `wrangler dev` pointed at it: the stack `npm start` runs. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const host = o.host ?? HOST;
  const cwd = o.cwd ?? ROOT;
  const cloudPortN = o.cloudPort || (await freePort(host));
  const edgePortN = o.edgePort || (await freePort(host));
  const secret = o.secret ?? newSecret();
  const envFiles: string[] = [];
  let secretFile: ReturnType<typeof privateSecretFile> | undefined;
  if (!o.secretInDevVars) {
    secretFile = privateSecretFile(secret, "fogline-start-");
    if (existsSync(join(cwd, ".dev.vars"))) envFiles.push(join(cwd, ".dev.vars"));
    envFiles.push(secretFile.file);
  }
  const cloudUrl = `http://${host}:${cloudPortN}`;
  const edgeUrl = `http://${host}:${edgePortN}`;
  const cloud = spawnCloud({ cwd, host, port: cloudPortN, secret, env: o.cloudEnv, output: o.output });
  const edge = spawnEdge({ cwd, host, port: edgePortN, vars: { CLOUD_URL: cloudUrl, ...o.edgeVars }, envFiles, env: o.edgeEnv, output: o.output });
  return {
    host,
    edgePort: edgePortN,
    cloudPort: cloudPortN,
    edgeUrl,
    cloudUrl,
    secret,
    cloud,
    edge,
    async ready(r = {}) {
      const [c, e] = await Promise.all([
        waitUntilReady(`${cloudUrl}/healthz`, cloud, 120_000, r),
        waitUntilReady(`${edgeUrl}/healthz`, edge, 180_000, r),
      ]);
      return { cloud: c, edge: e };
    },
    async stop() {
      await Promise.all([cloud.stop(), edge.stop()]);
      secretFile?.remove();
    },
  };
}

export interface StartOptions {
  /** the tree to run `npm start` in (default: this repository) */
  cwd?: string;
  edgePort: number;
  cloudPort: number;
  /** added to the environment (FOGLINE_HMAC_SECRET, FOGLINE_LOG_LEVEL, ...) */
  env?: Record<string, string>;
  /** a copy of its output (the load test's server.log) */
  tee?: NodeJS.WritableStream;
  detached?: boolean;
  timeoutMs: number;
  /** what a timeout says besides the output */
  timeoutMessage?: string;
}

/** `npm start` (scripts/start.ts) as a child, resolved once it prints `[fogline] ready:`. */
export async function spawnStart(o: StartOptions): Promise<NodeProcess> {
  const cwd = o.cwd ?? ROOT;
  const proc = new NodeProcess({
    name: "npm start",
    cwd,
    args: ["--import", "tsx", join(cwd, "scripts/start.ts")],
    env: { ...o.env, FOGLINE_EDGE_PORT: String(o.edgePort), FOGLINE_CLOUD_PORT: String(o.cloudPort) },
    tee: o.tee,
    detached: o.detached,
  });
  await proc.waitForOutput(/\[fogline\] ready: /, o.timeoutMs, o.timeoutMessage ?? `npm start was not ready in ${o.timeoutMs / 1000} s`);
  return proc;
}
