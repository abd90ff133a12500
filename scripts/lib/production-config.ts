// What a deployed edge Worker needs of its configuration, checked in two places: `npm run deploy`
// (scripts/deploy.ts, before wrangler starts) and wrangler.toml's [build] command
// (scripts/check-deploy-config.ts), which every `wrangler deploy` and `wrangler versions upload`
// runs before it asks for credentials or uploads anything. docs/deploy.md, docs/reliability.md.
import { isIP } from "node:net";

/**
 * Why `value` cannot be a deployed Worker's CLOUD_URL, or undefined when it can. It must be
 * https:// on the standard port with a host name: a deployed Worker cannot fetch localhost,
 * loopback or a bare IP address, and connects to 443 for https whatever port the URL names.
 */
export function cloudUrlProblem(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return "no CLOUD_URL";
  let url;
  try {
    url = new URL(value);
  } catch {
    return `CLOUD_URL ${JSON.stringify(value)} is not a URL`;
  }
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (url.protocol !== "https:") return `CLOUD_URL ${value} must be https://, not ${url.protocol}//`;
  if (host === "localhost" || host.endsWith(".localhost") || host === "0.0.0.0" || /^127\./.test(host) || host === "::1" || host === "::") {
    return `CLOUD_URL ${value} points at this machine (${host}), which a deployed Worker cannot reach`;
  }
  if (isIP(host)) return `CLOUD_URL ${value} is a bare IP address (${host}): a deployed Worker cannot fetch one; use the cloud's host name`;
  if (url.port !== "" && url.port !== "443") return `CLOUD_URL ${value} has port ${url.port}: a deployed Worker connects to 443 for https whatever the URL says`;
  return undefined;
}

/** A dev-only setting that must not reach a deployed Worker (workers/src/dev.ts). */
export const DEV_ONLY_VARS: readonly string[] = ["DEV_CLOSE_CONNECTIONS"];

export interface WranglerArgs {
  command: string | undefined;
  vars: Record<string, string>;
  env: string | undefined;
  config: string | undefined;
  dryRun: boolean;
}

/**
 * The flags of a `wrangler deploy` / `wrangler versions upload` command line that decide the
 * Worker's vars, parsed as wrangler's yargs does: `--var KEY:VALUE...` (an array: it takes the
 * words that follow up to the next flag; or `--var=KEY:VALUE`), `--env`/`-e`, `--config`/`-c`,
 * `--dry-run`. `args`: the words after `wrangler`.
 */
export function parseWranglerArgs(args: string[]): WranglerArgs {
  const out: WranglerArgs = { command: undefined, vars: {}, env: undefined, config: undefined, dryRun: false };
  const positional: string[] = [];
  const addVar = (kv: string) => {
    // wrangler's collectKeyValues: the key up to the first ':', the value after it
    const at = kv.indexOf(":");
    if (at > 0) out.vars[kv.slice(0, at)] = kv.slice(at + 1);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith("-") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "--var":
        if (inline !== undefined) addVar(inline);
        else while (i + 1 < args.length && !args[i + 1]!.startsWith("-")) addVar(args[++i]!);
        break;
      case "--env":
      case "-e":
        out.env = value();
        break;
      case "--config":
      case "-c":
        out.config = value();
        break;
      case "--dry-run":
      case "--dryRun":
        out.dryRun = inline === undefined || inline !== "false";
        break;
      case "--no-dry-run":
        out.dryRun = false;
        break;
      default:
        if (!a.startsWith("-")) positional.push(a);
    }
  }
  out.command = positional[0] === "versions" ? `versions ${positional[1] ?? ""}`.trim() : positional[0];
  return out;
}
