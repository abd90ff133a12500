/**
 * globalSetup of the workers project: real Node cloud servers for the edge->cloud hop
 * (vitest-pool-workers 0.15 has no fetchMock; docs/runtime.md#testing-inside-workerd-vitest-pool-workers). Ports go to the Worker via provide().
 */
import { rmSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { mismatchedModelsDir, startCloud, TEST_SECRET } from "./cloud-server.js";
import { modelsDir } from "./models.generated.js";
import { startOutageHarness } from "./outage.js";
import "./provided.js";

export default async function setup(project: TestProject) {
  const otherDir = mismatchedModelsDir(modelsDir);
  const [cloud, mismatched, gone, killable, smallBatch] = await Promise.all([
    startCloud(modelsDir),
    startCloud(otherDir),
    startCloud(modelsDir),
    startCloud(modelsDir),
    // FOGLINE_MAX_BATCH lowered below the contract's maxBatch (shared/contracts.json)
    startCloud(modelsDir, { env: { FOGLINE_MAX_BATCH: "1" } }),
  ]);
  // a port that was just served and is now closed: calls fail fast, like an outage
  await gone.close();
  project.provide("cloudPort", cloud.port);
  project.provide("mismatchedCloudPort", mismatched.port);
  project.provide("closedPort", gone.port);
  project.provide("smallBatchCloudPort", smallBatch.port);
  project.provide("hmacSecret", TEST_SECRET);
  // a cloud to kill and restart, a slow one, and a stopwatch outside workerd
  const outage = await startOutageHarness(modelsDir, cloud.port, killable);
  project.provide("controlPort", outage.controlPort);
  project.provide("slowCloudPort", outage.slowPort);
  project.provide("killableCloudPort", outage.killablePort);
  return async () => {
    await Promise.all([cloud.close(), mismatched.close(), smallBatch.close(), outage.close()]);
    rmSync(otherDir, { recursive: true, force: true });
  };
}
