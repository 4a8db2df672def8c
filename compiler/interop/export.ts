/**
 * Strata → Hugging Face: config.json + model.safetensors that transformers loads, for the layouts
 * that have a transformers class:
 *  - NemotronHForCausalLM: any stack of mamba2 ("M"), attention without RoPE ("*") and
 *    relu2 / gelu MLPs ("-"), RMSNorm (pure Mamba-2 models with groups > 1 too: NemotronH's gated
 *    norm is per group, like Strata's, which transformers' Mamba2 is not for n_groups > 1);
 *  - Mamba2ForCausalLM: Mamba-2 layers only with groups = 1 (where the two norms agree);
 *  - MambaForCausalLM: Mamba-1 layers only, RMSNorm;
 *  - LlamaForCausalLM: "*-" pairs of RoPE attention (full rotation) and SwiGLU MLPs, RMSNorm.
 * Tensor names come from the import maps run backwards, so export ∘ import is the identity.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";
import type { ModelDef } from "../dsl/model.js";
import { buildModel, modelParams, type ArchSpec } from "./arch-spec.js";
import { importHfConfigFromRaw, type WeightMapper } from "./hf.js";
import { specFromModelDef } from "./megatron.js";
import { checkRules, numel, openSafetensors, throwProblems, writeMapped, type WeightRule } from "./tensor-io.js";

export interface ExportResult {
  cls: string;
  config: Record<string, unknown>;
  notes: string[];
  tensors: number;
}

/** The transformers config for `spec`, or an error naming everything that does not fit. */
export function hfConfigFor(spec: ArchSpec): { cls: string; config: Record<string, unknown> } {
  const kinds = new Set(Object.values(spec.symbols).map((l) => l.kind));
  const misfit: string[] = [];
  if (spec.norm !== "rmsnorm") misfit.push(`norm "${spec.norm}" (the exported classes use RMSNorm)`);
  const base = { vocab_size: spec.vocab, hidden_size: spec.dModel, tie_word_embeddings: spec.tiedEmbeddings, dtype: "bfloat16", torch_dtype: "bfloat16" };
  const one = <K extends string>(kind: K) => {
    const ls = Object.entries(spec.symbols).filter(([, l]) => l.kind === kind);
    if (ls.length > 1) misfit.push(`${ls.length} different ${kind} configurations (symbols ${ls.map(([s]) => `'${s}'`).join(", ")}); a transformers config has one per layer kind`);
    return ls[0]?.[1].opts as Record<string, any> | undefined;
  };
  if (kinds.size === 1 && kinds.has("mamba")) {
    const m = one("mamba")!;
    const r = m.dtRank === "auto" || m.dtRank === undefined ? Math.ceil(spec.dModel / 16) : m.dtRank;
    if (misfit.length) throw misfitError(spec, "MambaForCausalLM", misfit);
    return {
      cls: "MambaForCausalLM",
      config: { architectures: ["MambaForCausalLM"], model_type: "mamba", ...base, num_hidden_layers: spec.pattern.length, state_size: m.dState ?? 16, expand: m.expand ?? 2, intermediate_size: (m.expand ?? 2) * spec.dModel, conv_kernel: m.dConv ?? 4, time_step_rank: r, use_bias: false, use_conv_bias: true, hidden_act: "silu", layer_norm_epsilon: spec.normEps, residual_in_fp32: false },
    };
  }
  if (/^(\*-)+$/.test(spec.pattern) && kinds.has("attention") && (spec.symbols["-"]?.opts as { act?: string }).act === "swiglu") {
    const a = one("attention")!;
    const rope = a.rope;
    if (!rope) misfit.push("attention without RoPE (Llama rotates every head)");
    else if (rope !== true && (rope.fraction ?? 1) !== 1) misfit.push(`RoPE on a fraction ${rope.fraction} of each head (Llama rotates all of it)`);
    if (misfit.length) throw misfitError(spec, "LlamaForCausalLM", misfit);
    const heads = a.heads as number;
    return {
      cls: "LlamaForCausalLM",
      config: { architectures: ["LlamaForCausalLM"], model_type: "llama", ...base, num_hidden_layers: spec.pattern.length / 2, num_attention_heads: heads, num_key_value_heads: a.kvHeads ?? heads, head_dim: a.headDim ?? spec.dModel / heads, intermediate_size: (spec.symbols["-"]!.opts as { hidden: number }).hidden, hidden_act: "silu", rms_norm_eps: spec.normEps, rope_theta: rope === true ? 10000 : rope.theta ?? 10000, rope_parameters: { rope_type: "default", rope_theta: rope === true ? 10000 : rope.theta ?? 10000 }, attention_bias: false, mlp_bias: false, max_position_embeddings: spec.seqLen ?? 4096 },
    };
  }
  if (kinds.size === 1 && kinds.has("mamba2") && ((one("mamba2")!.groups ?? 1) === 1)) {
    // one group: transformers' Mamba2 (whose torch path normalises over all of d_inner) equals
    // Strata's per-group norm. (transformers 5.17's NemotronH fails on attention-free patterns.)
    const m = one("mamba2")!;
    if ((m.normEps ?? 1e-5) !== spec.normEps) misfit.push(`Mamba-2 normEps ${m.normEps} ≠ the model's normEps ${spec.normEps} (Mamba2 has one layer_norm_epsilon)`);
    if (misfit.length) throw misfitError(spec, "Mamba2ForCausalLM", misfit);
    const expand = m.expand ?? 2, P = m.headDim ?? 64;
    return {
      cls: "Mamba2ForCausalLM",
      config: { architectures: ["Mamba2ForCausalLM"], model_type: "mamba2", ...base, num_hidden_layers: spec.pattern.length, num_heads: (expand * spec.dModel) / P, head_dim: P, expand, n_groups: 1, state_size: m.dState ?? 128, conv_kernel: m.dConv ?? 4, chunk_size: m.chunk ?? 128, use_bias: false, use_conv_bias: true, hidden_act: "silu", layer_norm_epsilon: spec.normEps, rms_norm: true, norm_before_gate: false, residual_in_fp32: false },
    };
  }
  for (const k of kinds) if (!["mamba2", "attention", "mlp"].includes(k)) misfit.push(`${k} layers (NemotronH has Mamba-2, attention and MLP blocks; Mamba-1-only models export as MambaForCausalLM)`);
  const m = one("mamba2"), a = one("attention"), f = one("mlp");
  if (a?.rope) misfit.push("attention with RoPE (NemotronH's attention has no position embedding)");
  if (f && f.act !== "relu2" && f.act !== "gelu") misfit.push(`MLP activation "${f.act}" (NemotronH's MLP is non-gated: relu2 or gelu)`);
  if (m && (m.normEps ?? 1e-5) !== spec.normEps) misfit.push(`Mamba-2 normEps ${m.normEps} ≠ the model's normEps ${spec.normEps} (NemotronH has one layer_norm_epsilon)`);
  if (misfit.length) throw misfitError(spec, "NemotronHForCausalLM", misfit);
  const config: Record<string, unknown> = { architectures: ["NemotronHForCausalLM"], model_type: "nemotron_h", ...base, num_hidden_layers: spec.pattern.length, hybrid_override_pattern: spec.pattern, layer_norm_epsilon: spec.normEps, use_bias: false, mlp_bias: false, attention_bias: false, use_conv_bias: true, residual_in_fp32: false, max_position_embeddings: spec.seqLen ?? 4096 };
  if (m) {
    const inner = (m.expand ?? 2) * spec.dModel;
    const P = m.headDim ?? 64;
    Object.assign(config, { mamba_num_heads: inner / P, mamba_head_dim: P, n_groups: m.groups ?? 1, ssm_state_size: m.dState ?? 128, conv_kernel: m.dConv ?? 4, chunk_size: m.chunk ?? 128, expand: m.expand ?? 2, mamba_hidden_act: "silu" }); // time_step_limit: the default (0, inf)
  }
  if (a) Object.assign(config, { num_attention_heads: a.heads, num_key_value_heads: a.kvHeads ?? a.heads, head_dim: a.headDim ?? spec.dModel / a.heads });
  if (f) Object.assign(config, { intermediate_size: f.hidden, mlp_hidden_act: f.act });
  return { cls: "NemotronHForCausalLM", config };
}

function misfitError(spec: ArchSpec, cls: string, misfit: string[]): StrataError {
  return new StrataError(`${spec.name}: does not fit ${cls}:\n${misfit.map((m) => `  - ${m}`).join("\n")}`, undefined, "export-hf writes NemotronHForCausalLM (Mamba-2 / attention without RoPE / relu2 or gelu MLP, RMSNorm), MambaForCausalLM (Mamba-1, RMSNorm) or LlamaForCausalLM (RoPE attention + SwiGLU pairs, RMSNorm)");
}

/** Export rules: each HF tensor is a row range of one Strata parameter (the import map run backwards). */
export function exportRules(spec: ArchSpec, mapper: WeightMapper): WeightRule[] {
  const rules: WeightRule[] = [];
  for (const p of modelParams(buildModel(spec))) {
    const rowElems = numel(p.shape.slice(1));
    let row = 0;
    for (const r of mapper.sources(p, () => false)) {
      const rows = numel(r.shape) / rowElems;
      rules.push({ target: r.name, shape: r.shape, dtype: p.dtype, pieces: [{ src: p.name, rows: [row, row + rows] }] });
      row += rows;
    }
  }
  return rules;
}

export function exportHf(def: ModelDef, weights: string, outDir: string): ExportResult {
  const spec = specFromModelDef(def);
  const { cls, config } = hfConfigFor(spec);
  // the import side's map for this config is the ground truth of the names
  const imp = importHfConfigFromRaw(config, `${outDir}/config.json`, spec.name);
  const rules = exportRules(imp.spec, imp.mapper);
  const src = openSafetensors(weights);
  try {
    const params = modelParams(def);
    const expected = new Map(params.map((p) => [p.name, p.shape]));
    throwProblems(`export-hf: ${weights} does not match ${def.config.name}`, checkRules(params.map((p) => ({ target: p.name, shape: p.shape, dtype: p.dtype, pieces: [{ src: p.name }] })), src, { expected }));
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, "config.json"), JSON.stringify(config, null, 2) + "\n");
    writeMapped(path.join(outDir, "model.safetensors"), rules, src, { format: "pt" });
  } finally {
    src.close();
  }
  const notes = [...imp.notes];
  if (cls === "NemotronHForCausalLM" && !spec.pattern.includes("*"))
    notes.push("transformers 5.17's NemotronH forward fails on a pattern without attention layers while caching ('get_seq_length can only be called on Attention layers'); call it with use_cache=False (not verified on the GPU machine).");
  return { cls, config, notes, tensors: rules.length };
}
