/**
 * Probe-sized Mamba-2 (tests/gpu/probe_experiment.md): the paper's pure Mamba-2 stack (no MLP, no
 * attention) at d 256: 7 layers of expand 2, head dim 64, 2 groups, state 64, chunk 64 (the CUDA
 * SSD kernel's sizes). ≈ 3.4M parameters, like the other probe-*.ts models.
 */
import { mamba2, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "probe-mamba2",
  vocab: 256,
  dModel: 256,
  norm: "rmsnorm",
  seqLen: 256,
  layers: stack({ pattern: "MMMMMMM", M: mamba2({ expand: 2, headDim: 64, groups: 2, dState: 64, dConv: 4, chunk: 64 }) }),
});
