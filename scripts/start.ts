// `npm start`: runs Fogline locally with the shipped models.
//   cloud (Node + onnxruntime-node) on 127.0.0.1:$FOGLINE_CLOUD_PORT (default 8788)
//   edge  (wrangler dev, workerd + onnxruntime-web) on 127.0.0.1:$FOGLINE_EDGE_PORT (default 8787)
// The HMAC secret comes from $FOGLINE_HMAC_SECRET (refused when weak), else .dev.vars, else (or
// when the one there is missing, the example's placeholder or weak) a new random one is written to
// .dev.vars (git-ignored). It reaches the cloud in its environment and wrangler in a file, never on
// a command line (scripts/lib/stack.ts). Ctrl-C stops both; if either half dies, both stop.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
// The rule both halves apply: 64+ hex characters or 43+ random ones, no placeholder. The cloud
// would refuse to start with a weak one, the edge would report not ready.
import { checkSecret } from "@fogline/shared/secret";
import { HOST, newSecret, ROOT, startStack } from "./lib/stack.js";

const root = ROOT;
const edgePort = Number(process.env.FOGLINE_EDGE_PORT ?? 8787);
const cloudPort = Number(process.env.FOGLINE_CLOUD_PORT ?? 8788);
const host = HOST;

function log(msg: string): void {
  console.log(`[fogline] ${msg}`);
}

function secretFromDevVars(): string | undefined {
  const file = join(root, ".dev.vars");
  if (!existsSync(file)) return undefined;
  const m = /^FOGLINE_HMAC_SECRET\s*=\s*"?([^"\n]+)"?\s*$/m.exec(readFileSync(file, "utf8"));
  return m?.[1]?.trim();
}

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
    secret = newSecret();
    const file = join(root, ".dev.vars");
    const old = existsSync(file) ? readFileSync(file, "utf8").replace(/^FOGLINE_HMAC_SECRET\s*=.*\n?/m, "") : "";
    writeFileSync(file, `${old}FOGLINE_HMAC_SECRET=${secret}\n`, { mode: 0o600 });
    secretSource = "new random secret written to .dev.vars";
  }
}
log(`HMAC secret: ${secretSource}`);

const gen = spawnSync(process.execPath, ["--import", "tsx", join(root, "scripts/gen-model-registry.ts")], { cwd: root, stdio: "inherit" });
if (gen.status !== 0) process.exit(gen.status ?? 1);

// DEV_CLOSE_CONNECTIONS: one request per connection to the Worker, working around a keep-alive
// race in wrangler dev 4.86's proxy that fails POSTs under load (workers/src/dev.ts)
const edgeVars: Record<string, string> = { DEV_CLOSE_CONNECTIONS: "true" };
// one log level for both halves (the cloud reads FOGLINE_LOG_LEVEL itself)
if (process.env.FOGLINE_LOG_LEVEL) edgeVars.LOG_LEVEL = process.env.FOGLINE_LOG_LEVEL;

const stack = await startStack({
  cwd: root,
  host,
  edgePort,
  cloudPort,
  secret,
  // from .dev.vars, which wrangler dev reads by itself; a secret from the environment goes to
  // wrangler in a private file, after .dev.vars
  secretInDevVars: secretSource !== "FOGLINE_HMAC_SECRET",
  edgeVars,
  output: "inherit",
});

let stopping = false;
function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  log("stopping edge and cloud");
  void stack.stop().then(() => process.exit(code));
}
for (const [name, proc] of [["cloud", stack.cloud], ["edge", stack.edge]] as const) {
  proc.child.once("exit", (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping`);
      stopAll(code || 1);
    }
  });
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => stopAll(0));

const up = await stack.ready({ cancelled: () => stopping });
if (stopping) {
  // a child died during start-up; stopAll is already running
} else if (!up.cloud || !up.edge) {
  log(`start-up timed out (cloud ready: ${up.cloud}, edge ready: ${up.edge})`);
  stopAll(1);
} else {
  log(`ready: edge ${stack.edgeUrl}  cloud ${stack.cloudUrl}  (Ctrl-C stops both)`);
  log(`try: curl -s -X POST -H 'content-type: image/png' --data-binary @your.png '${stack.edgeUrl}/v1/classify'`);
}
