/**
 * Probe-sized new ratio (tests/gpu/probe_experiment.md): Mamba-2 with a quarter attention and no
 * MLP at all (ratios attention 0.25, MLP 0: MM*MM*MM by Megatron's allocation), asking
 * whether the paper's hybrid needs its MLPs for recall or only its attention. d 256, 8 layers,
 * ≈ 3.4M parameters, like the other probe-*.ts models.
 */
import { attention, mamba2, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "probe-ssm-attn",
  vocab: 256,
  dModel: 256,
  norm: "rmsnorm",
  seqLen: 256,
  layers: stack({
    layers: 8,
    ratios: { attention: 0.25, mlp: 0 },
    M: mamba2({ expand: 2, headDim: 64, groups: 2, dState: 64, dConv: 4, chunk: 64 }),
    "*": attention({ heads: 4, kvHeads: 2, headDim: 64 }),
  }),
});
