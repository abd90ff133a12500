/**
 * Outage harness for the workers project, run in Node by test/global-setup.ts. Tests inside
 * workerd cannot spawn or kill processes, and their clock stands still during CPU work
 * (docs/runtime.md#workerds-clock), so this Node side offers them, over plain HTTP on 127.0.0.1:
 *
 *   GET  /clock              performance.now() of this process, ms: a stopwatch outside workerd
 *   POST /cloud/kill         SIGKILL the killable cloud (a crash: no clean shutdown)
 *   POST /cloud/start        start it again on the same port; answers once it listens
 *   GET  /slow/last          the x-request-id of the last call the slow cloud received
 *   GET  /sleep/<ms>         answers after <ms>: a pause for loops inside workerd, where a
 *                            stream of instantly failing fetches (a closed port) never lets a
 *                            timer fire, so setTimeout cannot be relied on there
 *
 * and a slow cloud: `http://127.0.0.1:<slowPort>/delay/<ms>/...` waits <ms>, then forwards the
 * call to the healthy cloud and relays its answer (a cloud slower than the edge's timeout).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import { startCloud, type RunningCloud } from "./cloud-server.js";

export interface OutageHarness {
  controlPort: number;
  slowPort: number;
  killablePort: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("no port");
  return addr.port;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `first` is the killable cloud, already started (from `modelsDir`, so that it can be restarted). */
export async function startOutageHarness(modelsDir: string, healthyPort: number, first: RunningCloud): Promise<OutageHarness> {
  let killable: RunningCloud | undefined = first;
  const killablePort = first.port;
  let starting: Promise<RunningCloud> | undefined;
  let lastRequestId: string | undefined;

  const control = createServer(async (req, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      await readBody(req);
      if (req.method === "GET" && req.url === "/clock") return reply(200, { ms: performance.now() });
      const sleep = /^\/sleep\/(\d+)$/.exec(req.url ?? "");
      if (req.method === "GET" && sleep) {
        await new Promise((r) => setTimeout(r, Number(sleep[1])));
        return reply(200, { slept: Number(sleep[1]) });
      }
      if (req.method === "GET" && req.url === "/slow/last") return reply(200, { requestId: lastRequestId ?? null });
      if (req.method === "POST" && req.url === "/cloud/kill") {
        await killable?.kill();
        killable = undefined;
        return reply(200, { killed: true });
      }
      if (req.method === "POST" && req.url === "/cloud/start") {
        if (!killable) {
          starting ??= startCloud(modelsDir, { port: killablePort });
          killable = await starting;
          starting = undefined;
        }
        return reply(200, { port: killable.port });
      }
      reply(404, { error: "no such control" });
    } catch (e) {
      reply(500, { error: String(e) });
    }
  });

  const slow = createServer(async (req, res) => {
    const m = /^\/delay\/(\d+)(\/.*)$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const body = await readBody(req);
    const id = req.headers["x-request-id"];
    lastRequestId = typeof id === "string" ? id : undefined;
    let gone = false;
    res.once("close", () => (gone = true));
    await new Promise((r) => setTimeout(r, Number(m[1])));
    if (gone) return; // the edge gave up (its timeout): nothing to answer
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
    try {
      const up = await fetch(`http://127.0.0.1:${healthyPort}${m[2]}`, { method: req.method, headers, body: body.length ? new Uint8Array(body) : undefined });
      res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/octet-stream" });
      res.end(Buffer.from(await up.arrayBuffer()));
    } catch {
      res.destroy();
    }
  });

  const [controlPort, slowPort] = await Promise.all([listen(control), listen(slow)]);
  return {
    controlPort,
    slowPort,
    killablePort,
    async close() {
      control.closeAllConnections();
      slow.closeAllConnections();
      control.close();
      slow.close();
      await (starting ?? Promise.resolve(undefined)).then((c) => c?.close());
      await killable?.close();
    },
  };
}
