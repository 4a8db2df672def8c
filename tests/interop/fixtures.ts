/**
 * Tiny Hugging Face checkpoints written by the tests themselves: a config.json per class and a
 * safetensors file with the tensor names and shapes transformers uses (written from the HF
 * modules' layouts, independently of Strata's name maps), filled with seeded random values.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { writeSafetensors, type SafetensorsDtype } from "../../compiler/io/safetensors.js";

export const SEED = Number(process.env.STRATA_TEST_SEED ?? 20261130);

/** mulberry32 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HfTensor {
  name: string;
  shape: number[];
  dtype?: SafetensorsDtype;
}

export const nemotronConfig = {
  architectures: ["NemotronHForCausalLM"],
  model_type: "nemotron_h",
  vocab_size: 1000,
  hidden_size: 128,
  hybrid_override_pattern: "M*-M-*M-",
  num_hidden_layers: 8,
  num_attention_heads: 5,
  num_key_value_heads: 1,
  head_dim: 32,
  intermediate_size: 320,
  mlp_hidden_act: "relu2",
  mamba_num_heads: 8,
  mamba_head_dim: 64,
  n_groups: 2,
  ssm_state_size: 64,
  conv_kernel: 4,
  chunk_size: 64,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: false,
  use_bias: false,
  mlp_bias: false,
  attention_bias: false,
  use_conv_bias: true,
  max_position_embeddings: 512,
};

export const mamba2Config = {
  architectures: ["Mamba2ForCausalLM"],
  model_type: "mamba2",
  vocab_size: 776,
  hidden_size: 128,
  num_hidden_layers: 2,
  expand: 4,
  num_heads: 8,
  head_dim: 64,
  n_groups: 2,
  state_size: 64,
  conv_kernel: 4,
  chunk_size: 64,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: false,
  residual_in_fp32: true,
};

export const mambaConfig = {
  architectures: ["MambaForCausalLM"],
  model_type: "mamba",
  vocab_size: 520,
  hidden_size: 128,
  num_hidden_layers: 2,
  expand: 2,
  intermediate_size: 256,
  state_size: 16,
  conv_kernel: 4,
  time_step_rank: "auto",
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
};

export const llamaConfig = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 1000,
  hidden_size: 96,
  intermediate_size: 200,
  num_hidden_layers: 2,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  head_dim: 32,
  rms_norm_eps: 1e-6,
  hidden_act: "silu",
  rope_parameters: { rope_type: "default", rope_theta: 500000 },
  max_position_embeddings: 256,
  tie_word_embeddings: false,
};

/** transformers' tensor names and shapes for the configs above. */
export function hfTensors(cfg: Record<string, any>, prefix?: string): HfTensor[] {
  const out: HfTensor[] = [];
  const d = cfg.hidden_size as number;
  const V = cfg.vocab_size as number;
  const t = (name: string, shape: number[], dtype?: SafetensorsDtype) => out.push({ name, shape, dtype });
  const mamba2 = (p: string, heads: number, P: number, G: number, N: number, K: number) => {
    const inner = heads * P;
    const conv = inner + 2 * G * N;
    t(`${p}in_proj.weight`, [inner + conv + heads, d]);
    t(`${p}conv1d.weight`, [conv, 1, K]);
    t(`${p}conv1d.bias`, [conv]);
    t(`${p}dt_bias`, [heads], "F32");
    t(`${p}A_log`, [heads], "F32");
    t(`${p}D`, [heads], "F32");
    t(`${p}norm.weight`, [inner]);
    t(`${p}out_proj.weight`, [d, inner]);
  };
  const arch = cfg.architectures[0] as string;
  if (arch === "LlamaForCausalLM") {
    const px = prefix ?? "model.";
    const hd = cfg.head_dim, H = cfg.num_attention_heads, Hk = cfg.num_key_value_heads, F = cfg.intermediate_size;
    t(`${px}embed_tokens.weight`, [V, d]);
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `${px}layers.${i}.`;
      t(`${p}input_layernorm.weight`, [d]);
      t(`${p}self_attn.q_proj.weight`, [H * hd, d]);
      t(`${p}self_attn.k_proj.weight`, [Hk * hd, d]);
      t(`${p}self_attn.v_proj.weight`, [Hk * hd, d]);
      t(`${p}self_attn.o_proj.weight`, [d, H * hd]);
      t(`${p}post_attention_layernorm.weight`, [d]);
      t(`${p}mlp.gate_proj.weight`, [F, d]);
      t(`${p}mlp.up_proj.weight`, [F, d]);
      t(`${p}mlp.down_proj.weight`, [d, F]);
    }
    t(`${px}norm.weight`, [d]);
    if (!cfg.tie_word_embeddings) t("lm_head.weight", [V, d]);
    return out;
  }
  const px = prefix ?? "backbone.";
  t(`${px}embeddings.weight`, [V, d]);
  const pattern: string = arch === "NemotronHForCausalLM" ? cfg.hybrid_override_pattern : "M".repeat(cfg.num_hidden_layers);
  [...pattern].forEach((c, i) => {
    const p = `${px}layers.${i}.`;
    t(`${p}norm.weight`, [d]);
    const m = `${p}mixer.`;
    if (arch === "NemotronHForCausalLM") {
      if (c === "M") mamba2(m, cfg.mamba_num_heads, cfg.mamba_head_dim, cfg.n_groups, cfg.ssm_state_size, cfg.conv_kernel);
      else if (c === "*") {
        const hd = cfg.head_dim, H = cfg.num_attention_heads, Hk = cfg.num_key_value_heads;
        t(`${m}q_proj.weight`, [H * hd, d]);
        t(`${m}k_proj.weight`, [Hk * hd, d]);
        t(`${m}v_proj.weight`, [Hk * hd, d]);
        t(`${m}o_proj.weight`, [d, H * hd]);
      } else {
        t(`${m}up_proj.weight`, [cfg.intermediate_size, d]);
        t(`${m}down_proj.weight`, [d, cfg.intermediate_size]);
      }
    } else if (arch === "Mamba2ForCausalLM") mamba2(m, cfg.num_heads, cfg.head_dim, cfg.n_groups, cfg.state_size, cfg.conv_kernel);
    else {
      const inner = cfg.expand * d, N = cfg.state_size, R = Math.ceil(d / 16);
      t(`${m}in_proj.weight`, [2 * inner, d]);
      t(`${m}conv1d.weight`, [inner, 1, cfg.conv_kernel]);
      t(`${m}conv1d.bias`, [inner]);
      t(`${m}x_proj.weight`, [R + 2 * N, inner]);
      t(`${m}dt_proj.weight`, [inner, R]);
      t(`${m}dt_proj.bias`, [inner], "F32");
      t(`${m}A_log`, [inner, N], "F32");
      t(`${m}D`, [inner], "F32");
      t(`${m}out_proj.weight`, [d, inner]);
    }
  });
  t(`${px}norm_f.weight`, [d]);
  if (!cfg.tie_word_embeddings) t("lm_head.weight", [V, d]);
  return out;
}

/** Random values for `t` (bf16-representable so round trips are exact). */
export function randomValues(t: HfTensor, next: () => number): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  const u = new Uint32Array(v.buffer);
  for (let i = 0; i < n; i++) {
    v[i] = (next() - 0.5) * 0.2;
    u[i] = u[i]! & 0xffff0000; // truncate to a bf16 value
  }
  return v;
}

/** Write config.json + model.safetensors (or 2 shards + index) under `dir`; returns the tensors' values. */
export function writeHfModel(dir: string, cfg: Record<string, unknown>, o: { seed?: number; shards?: boolean; prefix?: string; drop?: string[]; extra?: HfTensor[]; reshape?: Record<string, number[]> } = {}): Map<string, Float32Array> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg, null, 2));
  const next = rng(o.seed ?? SEED);
  const values = new Map<string, Float32Array>();
  let list = hfTensors(cfg, o.prefix).filter((t) => !o.drop?.includes(t.name));
  list = [...list, ...(o.extra ?? [])].map((t) => (o.reshape?.[t.name] ? { ...t, shape: o.reshape[t.name]! } : t));
  const tensors = list.map((t) => {
    const data = randomValues(t, next);
    values.set(t.name, data);
    return { name: t.name, dtype: t.dtype ?? ("BF16" as const), shape: t.shape, data };
  });
  if (!o.shards) writeSafetensors(path.join(dir, "model.safetensors"), tensors);
  else {
    const half = Math.ceil(tensors.length / 2);
    const parts = [tensors.slice(0, half), tensors.slice(half)];
    const weight_map: Record<string, string> = {};
    parts.forEach((p, i) => {
      const f = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(path.join(dir, f), p);
      for (const t of p) weight_map[t.name] = f;
    });
    writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map }, null, 2));
  }
  return values;
}
