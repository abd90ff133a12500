#!/usr/bin/env node
// `npm start`: runs Fogline locally with the shipped models.
//   cloud (Node + onnxruntime-node) on 127.0.0.1:$FOGLINE_CLOUD_PORT (default 8788)
//   edge  (wrangler dev, workerd + onnxruntime-web) on 127.0.0.1:$FOGLINE_EDGE_PORT (default 8787)
// The HMAC secret comes from $FOGLINE_HMAC_SECRET, else .dev.vars, else a new random one is
// written to .dev.vars (git-ignored). Ctrl-C stops both; if either half dies, both stop.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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

let secret = process.env.FOGLINE_HMAC_SECRET;
let secretSource = "FOGLINE_HMAC_SECRET";
if (!secret) {
  secret = secretFromDevVars();
  secretSource = ".dev.vars";
}
if (!secret || secret.startsWith("replace-me")) {
  secret = randomBytes(32).toString("hex");
  const file = join(root, ".dev.vars");
  const old = existsSync(file) ? readFileSync(file, "utf8").replace(/^FOGLINE_HMAC_SECRET=.*\n?/m, "") : "";
  writeFileSync(file, `${old}FOGLINE_HMAC_SECRET=${secret}\n`, { mode: 0o600 });
  secretSource = "new random secret written to .dev.vars";
}
log(`HMAC secret: ${secretSource}`);

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
// .dev.vars already gives wrangler the secret; pass it only when it came from the environment
if (secretSource === "FOGLINE_HMAC_SECRET") vars.push(`FOGLINE_HMAC_SECRET:${secret}`);
// one log level for both halves (the cloud reads FOGLINE_LOG_LEVEL itself)
if (process.env.FOGLINE_LOG_LEVEL) vars.push(`LOG_LEVEL:${process.env.FOGLINE_LOG_LEVEL}`);
start("edge", [wrangler, "dev", "--ip", host, "--port", String(edgePort), "--show-interactive-dev-session=false", ...vars.flatMap((v) => ["--var", v])], {
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
