/**
 * Hugging Face checkpoints → Strata: config.json to an `ArchSpec` (and so a DSL file), and the
 * safetensors weights to Strata's parameter names and dtypes.
 *
 * Classes: NemotronHForCausalLM (Mamba-2 / attention / MLP hybrids), Mamba2ForCausalLM,
 * MambaForCausalLM, LlamaForCausalLM. Semantics that differ are said in the generated file:
 * Strata's Mamba-2 gated RMSNorm is per group (NemotronH, Megatron-LM and mamba_ssm's fused
 * kernel); transformers' Mamba2 torch path normalises over all of d_inner, which is the same only
 * when n_groups = 1.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";
import { MODEL_NAME_RE } from "../dsl/model.js";
import type { ArchSpec, LayerSpec, ParamInfo } from "./arch-spec.js";
import { ConfigReader } from "./config.js";
import type { Piece, TensorSource, WeightRule } from "./tensor-io.js";

export const HF_CLASSES = ["NemotronHForCausalLM", "Mamba2ForCausalLM", "MambaForCausalLM", "LlamaForCausalLM"] as const;
export type HfClass = (typeof HF_CLASSES)[number];

/** A source tensor with the shape the config implies. */
export interface SrcRef {
  name: string;
  shape: number[];
  rows?: [number, number];
}

/** How to fill each Strata parameter from a checkpoint's tensors. */
export interface WeightMapper {
  /** Alternative names are tried in order against the source (e.g. `backbone.` vs `model.` prefixes). */
  sources(p: ParamInfo, has: (name: string) => boolean): SrcRef[];
  /** Source tensors that may be present and unused. */
  ignore(name: string): boolean;
}

export interface Imported {
  cls: string;
  spec: ArchSpec;
  mapper: WeightMapper;
  /** Things the user should know (printed by the CLI and written into the file's header). */
  notes: string[];
}

export function readHfConfig(input: string): { file: string; dir: string; raw: Record<string, unknown> } {
  if (!existsSync(input)) throw new StrataError(`not found: ${input}`, undefined, "give a Hugging Face model folder (config.json + safetensors) or its config.json");
  const file = statSync(input).isDirectory() ? path.join(input, "config.json") : input;
  if (!existsSync(file)) throw new StrataError(`${input}: no config.json in this folder`);
  let raw: unknown;
  try {
    raw = parsePythonJson(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StrataError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new StrataError(`${file}: a config must be a JSON object`);
  return { file, dir: path.dirname(file), raw: raw as Record<string, unknown> };
}

/**
 * JSON as Python's json module writes it: bare Infinity / -Infinity / NaN (e.g. transformers 4's
 * `"time_step_limit": [0.0, Infinity]`) become strings, which the field readers understand.
 */
export function parsePythonJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1"$2"'));
  }
}

/** A model name Strata accepts, from a folder or repo name. */
export function modelNameFrom(s: string, fallback: string): string {
  const n = s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/\.\.+/g, ".").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64);
  return MODEL_NAME_RE.test(n) ? n : fallback;
}

const TYPE_TO_CLASS: Record<string, HfClass> = { nemotron_h: "NemotronHForCausalLM", mamba2: "Mamba2ForCausalLM", mamba: "MambaForCausalLM", llama: "LlamaForCausalLM" };

export function hfClassOf(c: ConfigReader): HfClass {
  const archs = c.raw.architectures;
  if (Array.isArray(archs) && archs.length) {
    const a = String(archs[0]);
    if ((HF_CLASSES as readonly string[]).includes(a)) return a as HfClass;
    throw new StrataError(`${c.file}: architectures = ${JSON.stringify(archs)}: class '${a}' is not supported by strata import-hf`, undefined, `supported: ${HF_CLASSES.join(", ")}`);
  }
  const t = c.raw.model_type;
  if (typeof t === "string" && TYPE_TO_CLASS[t]) return TYPE_TO_CLASS[t]!;
  throw new StrataError(`${c.file}: neither 'architectures' nor a supported 'model_type' (got ${JSON.stringify(t)})`, undefined, `supported: ${HF_CLASSES.join(", ")} (model_type ${Object.keys(TYPE_TO_CLASS).join(", ")})`);
}

// ---- shared checks ----------------------------------------------------------------------------

const noBias = (c: ConfigReader, key: string, what: string) =>
  c.require<boolean>(key, false, (v) => v === false, `${what} biases are not supported: Strata's ${what} layers have no bias terms`, `use a checkpoint with ${key}: false`);

function checkDtLimit(c: ConfigReader): void {
  const lim = c.raw.time_step_limit;
  if (lim === undefined || lim === null) return;
  // transformers ≥ 5 writes inf as {"__float__": "Infinity"}
  const inf = (v: unknown) => v === null || v === "Infinity" || v === "inf" || Number(v) === Infinity || (typeof v === "object" && /^inf/i.test(String((v as Record<string, unknown>).__float__)));
  const ok = Array.isArray(lim) && lim.length === 2 && Number(lim[0]) === 0 && inf(lim[1]);
  if (!ok) c.fail("time_step_limit", "a clamp on dt is not supported (Strata's Mamba-2 applies softplus(dt + dt_bias) without clamping)", "only the default [0.0, inf] imports");
}

function checkSilu(c: ConfigReader, key: string): void {
  c.require<string>(key, "silu", (v) => v === "silu" || v === "swish", "Strata's Mamba layers use SiLU", `${key}: "silu"`);
}

function seqLenOf(c: ConfigReader, notes: string[]): number | undefined {
  if (!c.has("max_position_embeddings")) return undefined;
  const n = c.int("max_position_embeddings");
  if (n <= 8192) return n;
  notes.push(`max_position_embeddings = ${n}: seqLen set to 4096 (compile with --max-seq N for longer contexts).`);
  return 4096;
}

function mambaPattern(c: ConfigReader): string {
  const raw = c.raw.hybrid_override_pattern;
  const list = c.raw.layers_block_type ?? c.raw.layer_types;
  const NAMES: Record<string, string> = { mamba: "M", linear_attention: "M", M: "M", attention: "*", full_attention: "*", "*": "*", mlp: "-", "-": "-", moe: "E", E: "E" };
  let pattern: string;
  let key: string;
  if (Array.isArray(list)) {
    key = c.raw.layers_block_type !== undefined ? "layers_block_type" : "layer_types";
    pattern = list
      .map((t, i) => {
        const s = NAMES[String(t)];
        if (!s) c.fail(key, `layer ${i} has unknown block type ${JSON.stringify(t)}`, "valid: mamba / linear_attention, attention / full_attention, mlp");
        return s;
      })
      .join("");
  } else if (typeof raw === "string") {
    key = "hybrid_override_pattern";
    pattern = raw;
  } else throw new StrataError(`${c.file}: needs 'hybrid_override_pattern' (e.g. "M-M*-") or 'layers_block_type' (a list of block types)`);
  const bad = [...pattern].findIndex((ch) => !"M*-".includes(ch));
  if (bad >= 0) {
    const ch = pattern[bad]!;
    c.fail(key, ch === "E" ? `layer ${bad} is a mixture-of-experts block ('E' / "moe"), which Strata does not support` : `layer ${bad} has symbol '${ch}'`, "supported block types: M (Mamba-2), * (attention), - (MLP)");
  }
  if (c.has("num_hidden_layers") && c.raw.num_hidden_layers !== pattern.length && typeof raw === "string")
    c.fail("num_hidden_layers", `does not match the ${pattern.length} layers of hybrid_override_pattern`);
  return pattern;
}

function mlpAct(c: ConfigReader, key: string): "relu2" | "gelu" {
  const a = c.str(key, "relu2");
  if (a === "relu2") return "relu2";
  if (a === "gelu") return "gelu";
  c.fail(key, `activation '${a}' is not supported for a non-gated MLP`, `supported: "relu2" (squared ReLU), "gelu" (exact erf GeLU)`);
}

// ---- per-class config import -------------------------------------------------------------------

/** NemotronHConfig's older spellings (its __post_init__ renames them). */
const NEMOTRON_ALIASES: Record<string, string> = { mamba_n_groups: "n_groups", mamba_d_conv: "conv_kernel", mamba_expand: "expand", mamba_chunk_size: "chunk_size", mamba_conv_bias: "use_conv_bias", mamba_dt_limit: "time_step_limit" };

function nemotronH(c0: ConfigReader, name: string): Imported {
  const raw = { ...c0.raw };
  for (const [old, key] of Object.entries(NEMOTRON_ALIASES)) if (raw[old] !== undefined && raw[key] === undefined) raw[key] = raw[old];
  const c = new ConfigReader(c0.file, raw);
  const notes: string[] = [];
  const d = c.int("hidden_size");
  const pattern = mambaPattern(c);
  const eps = c.num("layer_norm_epsilon", 1e-5);
  const symbols: Record<string, LayerSpec> = {};
  if (pattern.includes("M")) {
    checkSilu(c, "mamba_hidden_act");
    checkDtLimit(c);
    noBias(c, "use_bias", "Mamba projection");
    noBias(c, "mamba_proj_bias", "Mamba projection");
    c.require<boolean>("use_conv_bias", true, (v) => v === true, "Strata's Mamba-2 conv1d always has a bias", "use_conv_bias: true");
    const heads = c.int("mamba_num_heads", 128);
    const headDim = c.int("mamba_head_dim", 64);
    const inner = heads * headDim;
    const expand = inner / d;
    if (!Number.isInteger(expand * d)) c.fail("mamba_num_heads", `d_inner = mamba_num_heads·mamba_head_dim = ${inner} is not expand·hidden_size for a representable expand`);
    symbols.M = { kind: "mamba2", opts: { dState: c.int("ssm_state_size", 128), headDim, heads, groups: c.int("n_groups", 8), expand, dConv: c.int("conv_kernel", 4), chunk: c.int("chunk_size", 128), normEps: eps } };
  }
  if (pattern.includes("*")) {
    noBias(c, "attention_bias", "attention");
    if (c.has("sliding_window")) c.fail("sliding_window", "sliding-window attention is not supported", "sliding_window: null");
    const heads = c.int("num_attention_heads");
    symbols["*"] = { kind: "attention", opts: { heads, kvHeads: c.int("num_key_value_heads", heads), headDim: c.int("head_dim", c.has("attention_head_dim") ? c.int("attention_head_dim") : d / heads) } };
  }
  if (pattern.includes("-")) {
    noBias(c, "mlp_bias", "MLP");
    symbols["-"] = { kind: "mlp", opts: { hidden: c.int("intermediate_size"), act: mlpAct(c, "mlp_hidden_act") } };
  }
  if (c.raw.residual_in_fp32 === true) notes.push("residual_in_fp32: Strata keeps the residual stream in the model dtype (bf16).");
  if (typeof c.raw.num_nextn_predict_layers === "number" && c.raw.num_nextn_predict_layers > 0) notes.push("multi-token-prediction layers (mtp.*) are not imported.");
  const spec: ArchSpec = {
    name,
    vocab: c.int("vocab_size"),
    dModel: d,
    norm: "rmsnorm",
    normEps: eps,
    tiedEmbeddings: c.bool("tie_word_embeddings", false),
    seqLen: seqLenOf(c, notes),
    pattern,
    symbols,
    header: [],
  };
  return { cls: "NemotronHForCausalLM", spec, notes, mapper: backboneMapper(spec) };
}

function mamba2Hf(c: ConfigReader, name: string): Imported {
  const notes: string[] = [];
  const d = c.int("hidden_size");
  checkSilu(c, "hidden_act");
  checkDtLimit(c);
  noBias(c, "use_bias", "Mamba projection");
  c.require<boolean>("use_conv_bias", true, (v) => v === true, "Strata's Mamba-2 conv1d always has a bias", "use_conv_bias: true");
  c.require<boolean>("rms_norm", true, (v) => v === true, "Strata's Mamba-2 uses a gated RMSNorm", "rms_norm: true");
  c.require<boolean>("norm_before_gate", false, (v) => v === false, "Strata's gated RMSNorm normalises y·silu(z) (norm_before_gate = false, as Mamba2 and Megatron-LM)");
  const expand = c.num("expand", 2);
  const headDim = c.int("head_dim", 64);
  const heads = c.int("num_heads", 128);
  if (heads * headDim !== expand * d) c.fail("num_heads", `num_heads·head_dim = ${heads}·${headDim} = ${heads * headDim} but d_inner = expand·hidden_size = ${expand * d}`);
  const groups = c.int("n_groups", 1);
  if (groups > 1)
    notes.push(`n_groups = ${groups}: Strata's gated RMSNorm normalises each of the ${groups} groups separately (as mamba_ssm's fused kernel, Megatron-LM and NemotronH do); transformers' Mamba2 torch path normalises over all of d_inner, so its logits differ from Strata's (and from its own CUDA path) for this checkpoint.`);
  if (c.raw.residual_in_fp32 !== false) notes.push("residual_in_fp32: Strata keeps the residual stream in the model dtype (bf16).");
  const L = c.int("num_hidden_layers");
  const eps = c.num("layer_norm_epsilon", 1e-5);
  const spec: ArchSpec = {
    name,
    vocab: c.int("vocab_size"),
    dModel: d,
    norm: "rmsnorm",
    normEps: eps,
    tiedEmbeddings: c.bool("tie_word_embeddings", false),
    pattern: "M".repeat(L),
    symbols: { M: { kind: "mamba2", opts: { dState: c.int("state_size", 128), headDim, heads, groups, expand, dConv: c.int("conv_kernel", 4), chunk: c.int("chunk_size", 256), normEps: eps } } },
    header: [],
  };
  return { cls: "Mamba2ForCausalLM", spec, notes, mapper: backboneMapper(spec) };
}

function mambaHf(c: ConfigReader, name: string): Imported {
  const notes: string[] = [];
  const d = c.int("hidden_size");
  checkSilu(c, "hidden_act");
  noBias(c, "use_bias", "Mamba projection");
  c.require<boolean>("use_conv_bias", true, (v) => v === true, "Strata's Mamba conv1d always has a bias", "use_conv_bias: true");
  const expand = c.num("expand", 2);
  if (c.has("intermediate_size") && c.int("intermediate_size") !== expand * d) c.fail("intermediate_size", `must equal expand·hidden_size = ${expand * d}`);
  const r = c.raw.time_step_rank ?? "auto";
  const dtRank = r === "auto" ? "auto" : c.int("time_step_rank");
  if (c.raw.residual_in_fp32 !== false) notes.push("residual_in_fp32: Strata keeps the residual stream in the model dtype (bf16).");
  const spec: ArchSpec = {
    name,
    vocab: c.int("vocab_size"),
    dModel: d,
    norm: "rmsnorm",
    normEps: c.num("layer_norm_epsilon", 1e-5),
    tiedEmbeddings: c.bool("tie_word_embeddings", true),
    pattern: "M".repeat(c.int("num_hidden_layers")),
    symbols: { M: { kind: "mamba", opts: { dState: c.int("state_size", 16), expand, dtRank, dConv: c.int("conv_kernel", 4) } } },
    header: [],
  };
  return { cls: "MambaForCausalLM", spec, notes, mapper: backboneMapper(spec) };
}

function llamaHf(c: ConfigReader, name: string): Imported {
  const notes: string[] = [];
  const d = c.int("hidden_size");
  c.require<string>("hidden_act", "silu", (v) => v === "silu", "Strata's Llama MLP is SwiGLU (silu(gate)·up)", 'hidden_act: "silu"');
  noBias(c, "attention_bias", "attention");
  noBias(c, "mlp_bias", "MLP");
  const heads = c.int("num_attention_heads");
  // rope: transformers ≥ 5 keeps it in rope_parameters, older configs in rope_theta / rope_scaling
  const rp = (c.raw.rope_parameters ?? null) as Record<string, unknown> | null;
  let theta = c.num("rope_theta", 10000);
  if (rp && typeof rp === "object") {
    const t = rp.rope_type ?? rp.type ?? "default";
    if (t !== "default") c.fail("rope_parameters", `rope_type '${String(t)}' is not supported: Strata's rope has a base (theta) and a rotated fraction, no frequency scaling`, "only rope_type \"default\" imports");
    if (typeof rp.rope_theta === "number") theta = rp.rope_theta;
    if (rp.partial_rotary_factor !== undefined && rp.partial_rotary_factor !== 1) c.fail("rope_parameters", "partial_rotary_factor in rope_parameters is not supported");
  }
  if (c.has("rope_scaling")) {
    const rs = c.raw.rope_scaling as Record<string, unknown>;
    const t = rs?.rope_type ?? rs?.type;
    if (t !== "default") c.fail("rope_scaling", `rope scaling '${String(t)}' is not supported: Strata's rope has a base (theta) and a rotated fraction, no frequency scaling`, "rope_scaling: null (or rope_type \"default\")");
  }
  const fraction = c.num("partial_rotary_factor", 1);
  const L = c.int("num_hidden_layers");
  const spec: ArchSpec = {
    name,
    vocab: c.int("vocab_size"),
    dModel: d,
    norm: "rmsnorm",
    normEps: c.num("rms_norm_eps", 1e-6),
    tiedEmbeddings: c.bool("tie_word_embeddings", false),
    seqLen: seqLenOf(c, notes),
    initLayers: L,
    pattern: "*-".repeat(L),
    symbols: {
      "*": { kind: "attention", opts: { heads, kvHeads: c.int("num_key_value_heads", heads), headDim: c.int("head_dim", d / heads), rope: fraction === 1 ? { theta } : { fraction, theta } } },
      "-": { kind: "mlp", opts: { hidden: c.int("intermediate_size"), act: "swiglu" } },
    },
    header: [],
  };
  return { cls: "LlamaForCausalLM", spec, notes, mapper: llamaMapper(spec) };
}

/** Config → spec for any supported class. */
export function importHfConfig(input: string, opts: { name?: string } = {}): Imported & { file: string; dir: string } {
  const { file, dir, raw } = readHfConfig(input);
  const cls = hfClassOf(new ConfigReader(file, raw));
  const name = opts.name ?? modelNameFrom(path.basename(path.resolve(dir)), `imported-${cls.replace(/ForCausalLM$/, "").toLowerCase()}`);
  return { ...importHfConfigFromRaw(raw, file, name), file, dir };
}

/** Config object → spec (`file` is only used in messages and the header). */
export function importHfConfigFromRaw(raw: Record<string, unknown>, file: string, name: string): Imported {
  const c = new ConfigReader(file, raw);
  const cls = hfClassOf(c);
  const r = cls === "NemotronHForCausalLM" ? nemotronH(c, name) : cls === "Mamba2ForCausalLM" ? mamba2Hf(c, name) : cls === "MambaForCausalLM" ? mambaHf(c, name) : llamaHf(c, name);
  r.spec.header = [
    `${r.cls} imported by \`strata import-hf\` from ${path.basename(path.dirname(path.resolve(file)))}/${path.basename(file)}.`,
    "Weights: `strata import-hf <dir> --weights-out model.safetensors` writes them under this file's parameter names.",
    ...(r.spec.symbols.M?.kind === "mamba2" ? ["Mamba-2's gated RMSNorm is per group (group size d_inner / groups), as in NemotronH and Megatron-LM."] : []),
    ...r.notes,
  ];
  return r;
}

// ---- weight name maps ---------------------------------------------------------------------------

/** The first name that exists in the source, else the first alternative (reported as missing). */
const pick = (has: (n: string) => boolean, alts: string[]) => alts.find(has) ?? alts[0]!;

/** Tried in order; the first is what export-hf writes. */
const PREFIXES = ["backbone.", "model.", ""];
const LLAMA_PREFIXES = ["model.", "backbone.", ""];
const layerIndex = (name: string) => Number(/^layers\.(\d+)\./.exec(name)?.[1]);

/** NemotronH, Mamba2 and Mamba share `backbone.layers.{i}.{norm, mixer.*}` (or `model.`). */
function backboneMapper(spec: ArchSpec): WeightMapper {
  return {
    sources(p, has) {
      const alts = (rest: string) => PREFIXES.map((x) => x + rest);
      if (p.name === "embedding.weight") return [{ name: pick(has, [...alts("embeddings.weight"), ...alts("embed_tokens.weight")]), shape: p.shape }];
      if (p.name === "final_norm.weight") return [{ name: pick(has, [...alts("norm_f.weight"), ...alts("norm.weight")]), shape: p.shape }];
      if (p.name === "lm_head.weight") return [{ name: "lm_head.weight", shape: p.shape }];
      const i = layerIndex(p.name);
      const rest = p.name.slice(`layers.${i}.`.length);
      const L = (s: string) => pick(has, alts(`layers.${i}.${s}`));
      if (rest === "norm.weight") return [{ name: L("norm.weight"), shape: p.shape }];
      const m = rest.slice("mixer.".length);
      const sym = spec.pattern[i]!;
      const kind = spec.symbols[sym]!.kind;
      if (kind === "attention") {
        const o = spec.symbols[sym]!.opts as { heads: number; kvHeads: number; headDim: number };
        if (m === "qkv.weight") {
          const d = spec.dModel;
          return [
            { name: L("mixer.q_proj.weight"), shape: [o.heads * o.headDim, d] },
            { name: L("mixer.k_proj.weight"), shape: [o.kvHeads * o.headDim, d] },
            { name: L("mixer.v_proj.weight"), shape: [o.kvHeads * o.headDim, d] },
          ];
        }
        return [{ name: L(`mixer.${m}`), shape: p.shape }];
      }
      if (kind === "mlp") return [{ name: L(`mixer.${m === "fc1.weight" ? "up_proj.weight" : "down_proj.weight"}`), shape: p.shape }];
      if (m === "conv1d.weight") return [{ name: L("mixer.conv1d.weight"), shape: [p.shape[0]!, 1, p.shape[1]!] }];
      return [{ name: L(`mixer.${m}`), shape: p.shape }];
    },
    ignore: (n) => /(^|\.)mtp\./.test(n) || n.endsWith("rotary_emb.inv_freq") || (spec.tiedEmbeddings && n === "lm_head.weight"),
  };
}

/** Llama: attention block 2j = input_layernorm + self_attn, MLP block 2j+1 = post_attention_layernorm + mlp. */
function llamaMapper(spec: ArchSpec): WeightMapper {
  const a = spec.symbols["*"]!.opts as { heads: number; kvHeads: number; headDim: number };
  const hidden = (spec.symbols["-"]!.opts as { hidden: number }).hidden;
  return {
    sources(p, has) {
      const M = (s: string) => pick(has, LLAMA_PREFIXES.map((x) => x + s));
      if (p.name === "embedding.weight") return [{ name: M("embed_tokens.weight"), shape: p.shape }];
      if (p.name === "final_norm.weight") return [{ name: M("norm.weight"), shape: p.shape }];
      if (p.name === "lm_head.weight") return [{ name: "lm_head.weight", shape: p.shape }];
      const i = layerIndex(p.name);
      const j = Math.floor(i / 2);
      const rest = p.name.slice(`layers.${i}.`.length);
      const d = spec.dModel;
      const L = (s: string) => M(`layers.${j}.${s}`);
      if (rest === "norm.weight") return [{ name: L(i % 2 === 0 ? "input_layernorm.weight" : "post_attention_layernorm.weight"), shape: p.shape }];
      switch (rest) {
        case "mixer.qkv.weight":
          return [
            { name: L("self_attn.q_proj.weight"), shape: [a.heads * a.headDim, d] },
            { name: L("self_attn.k_proj.weight"), shape: [a.kvHeads * a.headDim, d] },
            { name: L("self_attn.v_proj.weight"), shape: [a.kvHeads * a.headDim, d] },
          ];
        case "mixer.o_proj.weight":
          return [{ name: L("self_attn.o_proj.weight"), shape: p.shape }];
        case "mixer.fc1.weight":
          return [
            { name: L("mlp.gate_proj.weight"), shape: [hidden, d] },
            { name: L("mlp.up_proj.weight"), shape: [hidden, d] },
          ];
        case "mixer.fc2.weight":
          return [{ name: L("mlp.down_proj.weight"), shape: p.shape }];
      }
      throw new Error(`internal: no Llama source for ${p.name}`);
    },
    ignore: (n) => n.endsWith("rotary_emb.inv_freq") || (spec.tiedEmbeddings && n === "lm_head.weight"),
  };
}

/** Rules + expected source shapes for `params` from `mapper` against `src`. */
export function rulesFor(params: readonly ParamInfo[], mapper: WeightMapper, src: TensorSource): { rules: WeightRule[]; expected: Map<string, number[]> } {
  const has = (n: string) => src.tensors.has(n);
  const expected = new Map<string, number[]>();
  const rules = params.map((p) => {
    const refs = mapper.sources(p, has);
    for (const r of refs) expected.set(r.name, r.shape);
    return { target: p.name, shape: p.shape, dtype: p.dtype, pieces: refs.map((r): Piece => ({ src: r.name, ...(r.rows ? { rows: r.rows } : {}) })) };
  });
  return { rules, expected };
}
