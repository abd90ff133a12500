/**
 * globalSetup of the workers project: real Node cloud servers for the edge->cloud hop
 * (vitest-pool-workers 0.15 has no fetchMock; DESIGN §5). Ports go to the Worker via provide().
 */
import type { TestProject } from "vitest/node";
import { loadModels, startCloud, TEST_SECRET, withOtherFingerprint } from "./cloud-server.js";
import { modelsDir } from "./models.generated.js";
import "./provided.js";

export default async function setup(project: TestProject) {
  const models = await loadModels(modelsDir);
  const cloud = await startCloud(models);
  const mismatched = await startCloud(withOtherFingerprint(models));
  // a port that was just free: nothing listens there, so calls fail fast like an outage
  const gone = await startCloud(models);
  await gone.close();
  project.provide("cloudPort", cloud.port);
  project.provide("mismatchedCloudPort", mismatched.port);
  project.provide("closedPort", gone.port);
  project.provide("hmacSecret", TEST_SECRET);
  return async () => {
    await cloud.close();
    await mismatched.close();
  };
}
