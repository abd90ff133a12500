/**
 * The processes of a running stack (`npm start`: the Node cloud and wrangler dev's workerd) and
 * their memory, for the load test (scripts/loadtest.ts) and the e2e memory test
 * (test/e2e/memory.test.ts). Linux and macOS (`ps`); Linux only for the peak (`/proc`).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

export interface ProcessRow {
  pid: number;
  ppid: number;
  rssKiB: number;
  args: string;
}

export function processTable(): ProcessRow[] {
  const r = spawnSync("ps", ["-eo", "pid=,ppid=,rss=,args="], { encoding: "utf8" });
  if (r.status !== 0) return [];
  return r.stdout
    .split("\n")
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), rssKiB: Number(m[3]), args: m[4]! }));
}

export function descendants(rootPid: number): ProcessRow[] {
  const table = processTable();
  const out: ProcessRow[] = [];
  const queue = [rootPid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const row of table) if (row.ppid === p) out.push(row), queue.push(row.pid);
  }
  return out;
}

export const isWorkerd = (p: ProcessRow) => /(^|\/)workerd$/.test(p.args.split(" ")[0] ?? "");

/** wrangler dev runs two workerd processes: the Worker's runtime (with the inspector, through
 * which its console output reaches the terminal) and the dev server's ProxyWorker in front of it. */
export function stackProcesses(rootPid: number) {
  const procs = descendants(rootPid);
  const workerd = procs.filter(isWorkerd);
  return {
    all: procs,
    cloud: procs.filter((p) => p.args.includes("cloud/src/server.ts")),
    workerd: workerd.filter((p) => p.args.includes("--inspector-addr")),
    workerdProxy: workerd.filter((p) => !p.args.includes("--inspector-addr")),
    wrangler: procs.filter((p) => p.args.includes("wrangler") && !isWorkerd(p)),
  };
}

export interface StackMemory {
  cloudMiB: number | null;
  workerdMiB: number | null;
  workerdProxyMiB: number | null;
  wranglerMiB: number | null;
}

/** Resident memory of each part of the stack, in MiB (null where the part is not found). */
export function stackMemory(rootPid: number | undefined): StackMemory | undefined {
  if (rootPid === undefined) return undefined;
  const p = stackProcesses(rootPid);
  const mib = (rows: ProcessRow[]) => (rows.length ? Math.round((rows.reduce((a, r) => a + r.rssKiB, 0) / 1024) * 10) / 10 : null);
  return { cloudMiB: mib(p.cloud), workerdMiB: mib(p.workerd), workerdProxyMiB: mib(p.workerdProxy), wranglerMiB: mib(p.wrangler) };
}

/** A process's resident memory now and its peak (VmRSS, VmHWM), in KiB, from /proc (Linux). */
export function residentKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

/** Resets a process's peak (VmHWM) to its resident memory now (Linux: "5" into clear_refs; the
 * process must be ours), so the next peak read is what happened since. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}
