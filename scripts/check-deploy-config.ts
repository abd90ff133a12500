// The first step of wrangler.toml's [build] command: a production `wrangler deploy` (or
// `wrangler versions upload`) of the edge refuses to build unless the Worker it would ship has a
// production CLOUD_URL (https://<host name>, scripts/lib/production-config.ts) and none of the
// dev-only vars. wrangler runs the custom build before it asks for credentials or contacts
// Cloudflare, so a refusal here stops the deploy with nothing uploaded. `wrangler dev` (`npm
// start`, `npm run dev:edge`) is not checked.
//
// wrangler tells a custom build only which command runs it (WRANGLER_COMMAND), not its flags, and
// `--var CLOUD_URL:...` or `--env <name>` decide the Worker's vars. So this reads the command line
// of the wrangler process that started it (its nearest ancestor running wrangler; /proc on Linux,
// `ps` elsewhere) and resolves the vars as wrangler does: the config file (`--config`, else
// wrangler's own search), the environment (`--env`, else CLOUDFLARE_ENV; `vars` are not
// inherited by environments), then `--var` over them. Where that command line cannot be found,
// a deploy is refused (fail closed).
//
// `--dry-run` (`npm run test:bundle`, scripts/bench.ts, test/node/bundle.test.ts: bundle checks
// that upload nothing) prints the verdict and builds anyway.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { cloudUrlProblem, DEV_ONLY_VARS, parseWranglerArgs, type WranglerArgs } from "./lib/production-config.js";

const command = process.env.WRANGLER_COMMAND;
if (command !== "deploy" && command !== "versions upload") process.exit(0);

const HOW = [
  "A deployed edge needs the https:// address of the cloud half (docs/deploy.md), e.g.",
  "  npm run deploy -- --var CLOUD_URL:https://fogline-cloud.example.com",
  "  npx wrangler deploy --var CLOUD_URL:https://fogline-cloud.example.com",
  "  npx wrangler deploy --env production      (with CLOUD_URL in wrangler.toml's [env.production.vars])",
];

/** One write for all lines: wrangler prints each chunk of a build's output on its own. */
function say(...lines: string[]): void {
  console.error(lines.map((l) => `[fogline deploy check] ${l}`).join("\n"));
}

/** argv and parent pid of a process, or undefined. */
function processInfo(pid: number): { argv: string[]; ppid: number; cwd: string | undefined } | undefined {
  try {
    if (existsSync(`/proc/${pid}/cmdline`)) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== "");
      // the parent pid is the 2nd field after the parenthesised name, which may hold spaces
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      let cwd: string | undefined;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        cwd = undefined;
      }
      return { argv, ppid, cwd };
    }
    // macOS and other Unixes: words split on spaces (CLOUD_URL, env names and paths of a deploy have none)
    const out = execFileSync("ps", ["-o", "ppid=", "-o", "command=", "-p", String(pid)], { encoding: "utf8" }).trim();
    const m = /^(\d+)\s+(.*)$/.exec(out);
    return m ? { argv: m[2]!.split(/\s+/), ppid: Number(m[1]), cwd: undefined } : undefined;
  } catch {
    return undefined;
  }
}

const isWranglerScript = (word: string) => /(^|[\\/])(wrangler-dist[\\/]cli\.js|bin[\\/]wrangler\.js|wrangler)$/.test(word);

/** The words after `wrangler` of the nearest ancestor running a wrangler deploy or versions upload. */
function wranglerInvocation(): { pid: number; cwd: string | undefined; args: string[]; parsed: WranglerArgs } | undefined {
  let pid = process.ppid;
  for (let depth = 0; depth < 8 && pid > 1; depth++) {
    const info = processInfo(pid);
    if (!info) return undefined;
    const at = info.argv.findIndex(isWranglerScript);
    if (at >= 0) {
      const args = info.argv.slice(at + 1);
      const parsed = parseWranglerArgs(args);
      if (parsed.command === "deploy" || parsed.command === "versions upload") return { pid, cwd: info.cwd, args, parsed };
    }
    pid = info.ppid;
  }
  return undefined;
}

const invocation = wranglerInvocation();
if (!invocation) {
  say(`refusing to build for \`wrangler ${command}\`: cannot read the wrangler command line that started this build, so its CLOUD_URL cannot be checked.`, ...HOW);
  process.exit(1);
}
const { parsed } = invocation;
const base = invocation.cwd ?? process.cwd();
const envName = parsed.env ?? (process.env.CLOUDFLARE_ENV || undefined);

// wrangler's own reader: the same file search, environment selection and inheritance rules
const { unstable_readConfig: readConfig } = await import("wrangler");
const config = readConfig({ config: parsed.config === undefined ? undefined : resolve(base, parsed.config), env: envName }, { hideWarnings: true });
const configVars = (config.vars ?? {}) as Record<string, unknown>;
const vars: Record<string, unknown> = { ...configVars, ...parsed.vars };
const configVarsAt = `${config.configPath ?? "the config"} ${envName ? `[env.${envName}.vars]` : "[vars]"}`;
const where = (name: string) => (name in parsed.vars ? "--var" : configVarsAt);

const problems: string[] = [];
const cloudUrl = typeof vars.CLOUD_URL === "string" ? vars.CLOUD_URL : undefined;
const urlProblem = cloudUrlProblem(cloudUrl);
if (urlProblem) problems.push(cloudUrl === undefined ? `${urlProblem} (neither --var CLOUD_URL:... nor CLOUD_URL in ${configVarsAt})` : `${urlProblem} (from ${where("CLOUD_URL")})`);
for (const name of DEV_ONLY_VARS) if (name in vars) problems.push(`${name} (from ${where(name)}) is a \`npm start\` workaround, not for a deployed Worker`);

const target = `wrangler ${command}${envName ? ` --env ${envName}` : ""}`;
if (problems.length === 0) {
  say(`${target}: CLOUD_URL ${cloudUrl} (from ${where("CLOUD_URL")}) ok`);
  process.exit(0);
}
if (parsed.dryRun) {
  say(...problems.map((p) => `${target} --dry-run: a real deploy would be refused: ${p}`), "--dry-run uploads nothing: building anyway");
  process.exit(0);
}
say(...problems.map((p) => `refusing to build for ${target}: ${p}`), ...HOW);
process.exit(1);
