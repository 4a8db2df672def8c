/**
 * Initialisation specs carried on every param node (attrs.init), for training from scratch.
 * The C++ runtime and the interpreter draw from these deterministically from a seed.
 */
import type { AttrValue } from "../ir/node.js";

export type InitSpec =
  | { kind: "normal"; std: number }
  | { kind: "uniform"; low: number; high: number }
  | { kind: "const"; value: number }
  /** A_log = log U(low, high) (Mamba: A = −exp(A_log) in [−16, −1]). */
  | { kind: "alog_uniform"; low: number; high: number }
  /**
   * Mamba-1's deterministic S4D-real A_log: flat element i = log((i mod n) + 1), so a [d_inner, n]
   * tensor holds log(1..n) in every row (A = −exp(A_log) = −[1..n]). No random numbers.
   */
  | { kind: "alog_arange"; n: number }
  /** dt = exp(U(log dtMin, log dtMax)) clamped ≥ floor; value = softplus⁻¹(dt). */
  | { kind: "dt_bias"; dtMin: number; dtMax: number; floor: number }
  /** U(±1/sqrt(fanIn)): PyTorch's default kaiming_uniform(a=√5) bound for conv weights. */
  | { kind: "kaiming_uniform"; fanIn: number };

export const init = {
  normal: (std = 0.02): InitSpec => ({ kind: "normal", std }),
  /** Megatron's scaled init for output projections: std / sqrt(2·layers). */
  scaledNormal: (layers: number, std = 0.02): InitSpec => ({ kind: "normal", std: std / Math.sqrt(2 * layers) }),
  ones: (): InitSpec => ({ kind: "const", value: 1 }),
  zeros: (): InitSpec => ({ kind: "const", value: 0 }),
  aLog: (low = 1, high = 16): InitSpec => ({ kind: "alog_uniform", low, high }),
  /** Mamba-1 (mamba_ssm) A_log = log(repeat(arange(1, n+1), "n -> d n")): pass the state size n. */
  aLogArange: (n: number): InitSpec => ({ kind: "alog_arange", n }),
  dtBias: (dtMin = 0.001, dtMax = 0.1, floor = 1e-4): InitSpec => ({ kind: "dt_bias", dtMin, dtMax, floor }),
  kaimingUniform: (fanIn: number): InitSpec => ({ kind: "kaiming_uniform", fanIn }),
};

export function initAttr(s: InitSpec): AttrValue {
  return { ...s };
}
