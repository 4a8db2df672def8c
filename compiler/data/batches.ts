/**
 * Batches from a token file, with the loss-mask convention in one place: position t of a batch
 * row reads token t and predicts token t + 1 (its target), weighted by mask[t + 1] (1 everywhere
 * when the file has no mask). Rows of a probe file give T = rowLength − 1; a stream gives windows
 * of T + 1 tokens. Batch k of size B takes rows (or windows) k·B … k·B + B − 1, wrapping around.
 */
import { StrataError } from "../ir/errors.js";
import type { TokenData } from "./tokenfile.js";

export interface Batch {
  B: number;
  T: number;
  /** [B, T] row-major. */
  tokens: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
}

/** Number of distinct rows (probe files) or non-overlapping windows of T + 1 tokens (streams). */
export function batchUnits(d: TokenData, T: number): number {
  return d.rowLength > 0 ? d.ids.length / d.rowLength : Math.floor((d.ids.length - 1) / T);
}

export function makeBatch(d: TokenData, k: number, B: number, T?: number): Batch {
  const t = T ?? (d.rowLength > 0 ? d.rowLength - 1 : undefined);
  if (t === undefined || !Number.isInteger(t) || t < 1) throw new StrataError(`makeBatch: a token stream needs an explicit sequence length T ≥ 1, got ${T}`);
  if (d.rowLength > 0 && t + 1 > d.rowLength)
    throw new StrataError(`makeBatch: rows hold ${d.rowLength} tokens, so T can be at most ${d.rowLength - 1}, got ${t}`);
  const units = batchUnits(d, t);
  if (units < 1) throw new StrataError(`makeBatch: ${d.ids.length} tokens hold no window of T + 1 = ${t + 1} tokens`, undefined, "use a smaller T or more data");
  const tokens = new Int32Array(B * t), targets = new Int32Array(B * t), weights = new Float32Array(B * t);
  for (let b = 0; b < B; b++) {
    const u = (((k * B + b) % units) + units) % units;
    const start = d.rowLength > 0 ? u * d.rowLength : u * t;
    for (let i = 0; i < t; i++) {
      tokens[b * t + i] = d.ids[start + i]!;
      targets[b * t + i] = d.ids[start + i + 1]!;
      weights[b * t + i] = d.mask ? d.mask[start + i + 1]! : 1;
    }
  }
  return { B, T: t, tokens, targets, weights };
}
