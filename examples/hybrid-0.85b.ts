/**
 * The ~0.85B Mamba-2-Hybrid of the training benchmark (issue 9 item 8): d_model 2048, 24 layers
 * allocated by Megatron's algorithm at attention 0.08 / MLP 0.5 (M-M-M--*M-M-M-M-*M--M-M-: 10
 * Mamba-2, 2 attention, 12 MLP), the paper's Mamba-2 (expand 2, head dim 64, 8 groups, state 128,
 * conv 4, chunk 128), GQA 16 heads / 4 KV groups without position embedding, GeLU MLP 8192 (the
 * paper's hybrid: lib/paper.ts), RMSNorm, vocab 32000, untied head: 850,009,984 parameters, the
 * same model as the PyTorch peer tests/gpu/train_peer.py.
 */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "hybrid-0.85b",
  vocab: 32000,
  dModel: 2048,
  dtype: "bf16",
  norm: "rmsnorm",
  tiedEmbeddings: false,
  seqLen: 4096,
  layers: stack({
    layers: 24,
    ratios: { attention: 0.08, mlp: 0.5 },
    M: mamba2({ expand: 2, headDim: 64, groups: 8, dState: 128, dConv: 4, chunk: 128, normEps: 1e-5 }),
    "*": attention({ heads: 16, kvHeads: 4, headDim: 128 }),
    "-": mlp({ hidden: 8192, act: "gelu" }),
  }),
});
