/**
 * Probe-sized Transformer (issue 9's small-scale recall experiment, tests/gpu/probe_experiment.md):
 * the paper's Transformer layout (attention with RoPE, squared-ReLU MLP of 4·d, alternating) at
 * d 256, 8 layers, byte-level vocabulary. ≈ 3.3M parameters, like the other probe-*.ts models.
 */
import { attention, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "probe-transformer",
  vocab: 256,
  dModel: 256,
  norm: "rmsnorm",
  seqLen: 256,
  layers: stack({
    pattern: "*-*-*-*-",
    "*": attention({ heads: 4, headDim: 64, rope: true }),
    "-": mlp({ hidden: 1024, act: "relu2" }),
  }),
});
