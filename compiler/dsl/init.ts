/**
 * Initialisation specs carried on every param node (attrs.init), for training from scratch.
 * The C++ runtime and the interpreter draw from these deterministically from a seed.
 */
import type { AttrValue } from "../ir/node.js";

export type { InitSpec } from "../ir/init.js";
import type { InitSpec } from "../ir/init.js";

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
