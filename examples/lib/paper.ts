/**
 * Settings shared by the 8B models of "An Empirical Study of Mamba-based Language Models"
 * (Waleffe et al., 2024, arXiv:2406.07887; Megatron-LM's hybrid configs): 256K-token vocabulary,
 * d_model 4096, untied embeddings, bf16, 4096-token pretraining context.
 */
import { attention, mamba2, mlp, stack, type ModelDef, type ModelOptions } from "../../compiler/dsl/index.js";

export const PAPER_BASE = {
  vocab: 256000,
  dModel: 4096,
  dtype: "bf16",
  tiedEmbeddings: false,
  seqLen: 4096,
} as const satisfies Partial<ModelOptions>;

/** The paper's Mamba-2 layer: expand 2, head dim 64, 8 groups, state 128, conv 4, chunk 128. */
export const paperMamba2 = () => mamba2({ expand: 2, headDim: 64, groups: 8, dState: 128, dConv: 4, chunk: 128, normEps: 1e-5 });

/**
 * The paper's MLP: 4·d_model = 16384 hidden units. The activation differs between the released
 * checkpoints (NVIDIA/Megatron-LM, examples/mamba/): the 8B Transformer's script
 * `run_text_gen_server_8b_gpt3.sh` passes `--squared-relu`, while the 8B Mamba-2-Hybrid's
 * `run_text_gen_server_8b.sh` and `train.sh` pass no activation flag, so the hybrid's MLPs use
 * Megatron's default `activation_func = F.gelu` (megatron/core/transformer/transformer_config.py),
 * i.e. exact (erf) GeLU. The parameter count is the same either way. Default: the Transformer's.
 */
export const paperMlp = (act: "relu2" | "gelu" = "relu2") => mlp({ hidden: 16384, act });

/**
 * Mamba-2-Hybrid: 56 layers, 8% attention (GQA, 8 KV groups, no position embedding), 50% MLP
 * (GeLU), the rest Mamba-2 — allocated by Megatron's algorithm to 24 M, 4 *, 28 -.
 */
export const hybridStack = () =>
  stack({
    layers: 56,
    ratios: { attention: 0.08, mlp: 0.5 },
    M: paperMamba2(),
    "*": attention({ heads: 32, kvHeads: 8, headDim: 128 }),
    "-": paperMlp("gelu"), // exact GeLU: see paperMlp
  });

/** Options for a long-context variant of `base`: same layers, seqLen = maxContext = `context`. */
export function longContext(base: ModelDef, context: number, name = `${base.config.name}-${context / 1024}k`): ModelOptions {
  const { config } = base;
  return { ...config, name, layers: base.stack ?? [...base.layers], seqLen: context, maxContext: context };
}
