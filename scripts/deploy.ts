// `npm run deploy [-- <wrangler deploy flags>]`: `wrangler deploy` of the edge, refused unless it
// has a production CLOUD_URL. wrangler.toml sets none (so no deploy ships the dev address), and
// this script takes it from, in order:
//   --var CLOUD_URL:<url> among the flags, the CLOUD_URL environment variable, or, with
//   --env <name>, CLOUD_URL in wrangler.toml's [env.<name>.vars].
// It must be https:// on the standard port, with a host name: not localhost or loopback, not a bare
// IP address (a deployed Worker cannot fetch those, and ignores a custom port on https). The dev
// setting DEV_CLOSE_CONNECTIONS is refused too. docs/deploy.md.
// wrangler.toml's [build] command (scripts/check-deploy-config.ts) applies the same rule to every
// `wrangler deploy`, this one included; checking here too refuses before wrangler starts, and
// takes CLOUD_URL from the environment, which wrangler itself does not read.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { cloudUrlProblem } from "./lib/production-config.js";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const args = process.argv.slice(2);

function refuse(why: string): never {
  console.error(`[fogline deploy] refusing to deploy: ${why}`);
  console.error("[fogline deploy] e.g. npm run deploy -- --var CLOUD_URL:https://fogline-cloud.example.com   (docs/deploy.md)");
  process.exit(1);
}

/** Values of a flag given as `--flag value` or `--flag=value`. */
function flagValues(names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    for (const n of names) {
      if (a === n && i + 1 < args.length) out.push(args[i + 1]!);
      else if (a.startsWith(`${n}=`)) out.push(a.slice(n.length + 1));
    }
  }
  return out;
}

const vars = flagValues(["--var"]);
if (vars.some((v) => v.startsWith("DEV_CLOSE_CONNECTIONS:"))) refuse("DEV_CLOSE_CONNECTIONS is a `npm start` workaround, not for a deployed Worker");

function fromWranglerEnv(name: string): string | undefined {
  const file = join(root, "wrangler.toml");
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, "utf8");
  const header = `[env.${name}.vars]`;
  const at = text.split("\n").findIndex((l) => l.trim() === header);
  if (at < 0) return undefined;
  for (const line of text.split("\n").slice(at + 1)) {
    if (line.trim().startsWith("[")) break;
    const m = /^\s*CLOUD_URL\s*=\s*"([^"]*)"/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

let cloudUrl: string | undefined;
let source = "";
const fromFlag = vars.filter((v) => v.startsWith("CLOUD_URL:")).map((v) => v.slice("CLOUD_URL:".length));
const envName = flagValues(["--env", "-e"])[0];
if (fromFlag.length) {
  cloudUrl = fromFlag.at(-1);
  source = "--var";
} else if (process.env.CLOUD_URL) {
  cloudUrl = process.env.CLOUD_URL;
  source = "the CLOUD_URL environment variable";
} else if (envName && fromWranglerEnv(envName) !== undefined) {
  cloudUrl = fromWranglerEnv(envName);
  source = `wrangler.toml [env.${envName}.vars]`;
}
if (!cloudUrl) refuse("no CLOUD_URL: pass --var CLOUD_URL:https://<cloud host>, set CLOUD_URL, or set it in wrangler.toml's [env.<name>.vars] and pass --env <name>");

const problem = cloudUrlProblem(cloudUrl);
if (problem) refuse(`${problem} (from ${source})`);
const url = new URL(cloudUrl);

const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
const extra = source === "--var" ? [] : ["--var", `CLOUD_URL:${url.origin}${url.pathname.replace(/\/+$/, "")}`];
console.log(`[fogline deploy] CLOUD_URL ${cloudUrl} (from ${source})`);
const r = spawnSync(process.execPath, [wrangler, "deploy", ...args, ...extra], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
