/**
 * Probe-sized Mamba-2-Hybrid (tests/gpu/probe_experiment.md): the paper's ratios (attention 0.08,
 * MLP 0.5, the rest Mamba-2) at 7 layers, allocated by Megatron's algorithm like the 8B hybrid:
 * one attention layer (no position embedding), four GeLU MLPs, two Mamba-2. d 256, ≈ 3.4M parameters.
 */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "probe-hybrid",
  vocab: 256,
  dModel: 256,
  norm: "rmsnorm",
  seqLen: 256,
  layers: stack({
    layers: 7,
    ratios: { attention: 0.08, mlp: 0.5 },
    M: mamba2({ expand: 2, headDim: 64, groups: 2, dState: 64, dConv: 4, chunk: 64 }),
    "*": attention({ heads: 4, kvHeads: 2, headDim: 64 }),
    "-": mlp({ hidden: 1024, act: "gelu" }),
  }),
});
