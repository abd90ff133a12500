/**
 * The out-of-distribution flag of every answer (docs/ood.md): the free energy of the answering
 * head's logits, E = -logsumexp(z), against a threshold from the manifest's `ood` section
 * (training/ood.py fits each so that 95 % of the model's own validation images stay under it).
 * Higher energy means logits that are small everywhere: no class fits the image well. A
 * confident softmax can still come with a high energy, which is why this is a signal apart from
 * the exit entropy.
 *
 * Which threshold: an answer whose head the exit rule chose (exit=auto, the cloud answered when
 * asked) is compared with `thresholds`, fitted on the images the rule sends to that head; the edge
 * only answers confident images, so their energies run lower than the average image's. An answer
 * whose head was forced (exit=edge, exit=cloud, or a degraded edge answer) is compared with
 * `forcedThresholds`, fitted on every image.
 */
import { logSumExp } from "./entropy.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";

export interface OodVerdict {
  /** free energy of the answering head's logits, -logsumexp(z) */
  score: number;
  /** the threshold this answer was compared with */
  threshold: number;
  /** score > threshold: the image is probably none of the model's classes */
  flagged: boolean;
}

/**
 * The verdict for one answer, or undefined for a model whose manifest has no `ood` calibration.
 * `routed`: the exit rule chose the head that answered (exit=auto and not degraded).
 */
export function oodVerdict(manifest: Manifest, at: "edge" | "cloud", logits: ArrayLike<number>, routed: boolean): OodVerdict | undefined {
  if (!manifest.ood) return undefined;
  const score = -logSumExp(logits);
  const threshold = (routed ? manifest.ood.thresholds : manifest.ood.forcedThresholds)[at];
  return { score, threshold, flagged: score > threshold };
}
