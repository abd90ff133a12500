/**
 * Exit rule helpers (docs/contracts.md "Exit rule"): softmax entropy in natural log, computed
 * in float64 with the log-sum-exp form so large logits cannot overflow.
 */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return max + Math.log(sum);
}

export function softmax(logits: ArrayLike<number>): Float64Array {
  const lse = logSumExp(logits);
  const p = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) p[i] = Math.exp(logits[i]! - lse);
  return p;
}

/** H = -sum p_i ln p_i = lse - sum p_i z_i */
export function entropy(logits: ArrayLike<number>): number {
  const lse = logSumExp(logits);
  let h = lse;
  for (let i = 0; i < logits.length; i++) h -= Math.exp(logits[i]! - lse) * logits[i]!;
  return Math.max(0, h);
}

/** The sample exits at the edge when entropy < threshold, strictly (paper; BranchyNet rule). */
export function exitsAtEdge(entropyValue: number, threshold: number): boolean {
  return entropyValue < threshold;
}

export interface Ranked {
  label: string;
  classIndex: number;
  score: number;
}

export function topK(logits: ArrayLike<number>, labels: readonly string[], k = 5): Ranked[] {
  const p = softmax(logits);
  const idx = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]! || a - b);
  return idx.slice(0, Math.min(k, p.length)).map((i) => ({ label: labels[i] ?? String(i), classIndex: i, score: p[i]! }));
}
