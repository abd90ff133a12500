#!/usr/bin/env node
// `npm start`: runs Fogline locally with the shipped models.
//   cloud (Node + onnxruntime-node) on 127.0.0.1:$FOGLINE_CLOUD_PORT (default 8788)
//   edge  (wrangler dev, workerd + onnxruntime-web) on 127.0.0.1:$FOGLINE_EDGE_PORT (default 8787)
// The HMAC secret comes from $FOGLINE_HMAC_SECRET (refused when weak), else .dev.vars, else (or
// when the one there is missing, the example's placeholder or weak) a new random one is written to
// .dev.vars (git-ignored). It reaches the cloud in its environment and wrangler in a file, never on
// a command line. Ctrl-C stops both; if either half dies, both stop.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tsImport } from "tsx/esm/api";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const edgePort = Number(process.env.FOGLINE_EDGE_PORT ?? 8787);
const cloudPort = Number(process.env.FOGLINE_CLOUD_PORT ?? 8788);
const host = "127.0.0.1";

function log(msg) {
  console.log(`[fogline] ${msg}`);
}

function secretFromDevVars() {
  const file = join(root, ".dev.vars");
  if (!existsSync(file)) return undefined;
  const m = /^FOGLINE_HMAC_SECRET\s*=\s*"?([^"\n]+)"?\s*$/m.exec(readFileSync(file, "utf8"));
  return m?.[1]?.trim();
}

// The rule both halves apply (shared/src/secret.ts): 64+ hex characters or 43+ random ones, no
// placeholder. The cloud would refuse to start with a weak one, the edge would report not ready.
const { checkSecret } = await tsImport("../shared/src/secret.ts", import.meta.url);

let secret = process.env.FOGLINE_HMAC_SECRET;
let secretSource = "FOGLINE_HMAC_SECRET";
if (secret) {
  // chosen by the caller: refuse it rather than replace it behind their back
  const check = checkSecret(secret);
  if (!check.ok) {
    console.error(`[fogline] ${check.message}`);
    process.exit(1);
  }
} else {
  secret = secretFromDevVars();
  secretSource = ".dev.vars";
  const check = checkSecret(secret);
  if (!check.ok) {
    // missing, or the example's placeholder, or weak: a fresh one replaces it in .dev.vars
    if (secret) log(`the secret in .dev.vars is not usable (${check.fault}); replacing it`);
    secret = randomBytes(32).toString("hex");
    const file = join(root, ".dev.vars");
    const old = existsSync(file) ? readFileSync(file, "utf8").replace(/^FOGLINE_HMAC_SECRET\s*=.*\n?/m, "") : "";
    writeFileSync(file, `${old}FOGLINE_HMAC_SECRET=${secret}\n`, { mode: 0o600 });
    secretSource = "new random secret written to .dev.vars";
  }
}
log(`HMAC secret: ${secretSource}`);

// The edge gets the secret from a file, never on wrangler's command line (which `ps` shows to
// every user): .dev.vars, which wrangler dev reads by itself, or, for a secret from the
// environment, a private file (mode 600 in a fresh mode-700 folder) handed over with --env-file,
// after .dev.vars so that its other entries (METRICS_TOKEN) still apply.
const envFiles = [];
let privateDir;
if (secretSource === "FOGLINE_HMAC_SECRET") {
  privateDir = mkdtempSync(join(tmpdir(), "fogline-start-"));
  const file = join(privateDir, "secrets.env");
  writeFileSync(file, `FOGLINE_HMAC_SECRET=${secret}\n`, { mode: 0o600 });
  if (existsSync(join(root, ".dev.vars"))) envFiles.push(join(root, ".dev.vars"));
  envFiles.push(file);
}
const removePrivateDir = () => privateDir && rmSync(privateDir, { recursive: true, force: true });
process.on("exit", removePrivateDir);

const gen = spawnSync(process.execPath, [join(root, "scripts/gen-model-registry.mjs")], { cwd: root, stdio: "inherit" });
if (gen.status !== 0) process.exit(gen.status ?? 1);

const children = [];
let stopping = false;

function stopAll(code) {
  if (stopping) return;
  stopping = true;
  log("stopping edge and cloud");
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }, 5000);
  force.unref();
  Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once("exit", r))))).then(() =>
    process.exit(code),
  );
}

function start(name, args, env) {
  // stdin is not shared: Ctrl-C reaches us (and the process group) as SIGINT
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  child.once("exit", (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping`);
      stopAll(code || 1);
    }
  });
  children.push(child);
  return child;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => stopAll(0));

start("cloud", ["--import", "tsx", "cloud/src/server.ts"], {
  FOGLINE_HMAC_SECRET: secret,
  FOGLINE_CLOUD_PORT: String(cloudPort),
  FOGLINE_CLOUD_HOST: host,
});

const wrangler = require.resolve("wrangler/bin/wrangler.js");
// DEV_CLOSE_CONNECTIONS: one request per connection to the Worker, working around a keep-alive
// race in wrangler dev 4.86's proxy that fails POSTs under load (workers/src/dev.ts)
const vars = [`CLOUD_URL:http://${host}:${cloudPort}`, "DEV_CLOSE_CONNECTIONS:true"];
// one log level for both halves (the cloud reads FOGLINE_LOG_LEVEL itself)
if (process.env.FOGLINE_LOG_LEVEL) vars.push(`LOG_LEVEL:${process.env.FOGLINE_LOG_LEVEL}`);
const edgeArgs = ["dev", "--ip", host, "--port", String(edgePort), "--show-interactive-dev-session=false"];
edgeArgs.push(...vars.flatMap((v) => ["--var", v]), ...envFiles.flatMap((f) => ["--env-file", f]));
start("edge", [wrangler, ...edgeArgs], {
  WRANGLER_SEND_METRICS: "false",
});

async function waitReady(url, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !stopping) {
    try {
      const res = await fetch(url);
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

const [cloudUp, edgeUp] = await Promise.all([
  waitReady(`http://${host}:${cloudPort}/healthz`, 120_000),
  waitReady(`http://${host}:${edgePort}/healthz`, 180_000),
]);
if (stopping) {
  // a child died during start-up; stopAll is already running
} else if (!cloudUp || !edgeUp) {
  log(`start-up timed out (cloud ready: ${cloudUp}, edge ready: ${edgeUp})`);
  stopAll(1);
} else {
  log(`ready: edge http://${host}:${edgePort}  cloud http://${host}:${cloudPort}  (Ctrl-C stops both)`);
  log(`try: curl -s -X POST -H 'content-type: image/png' --data-binary @your.png 'http://${host}:${edgePort}/v1/classify'`);
}
