/**
 * Megatron-LM checkpoints (as released for Waleffe et al. 2024) → Strata weights and architecture.
 *
 *   <dir>/latest_checkpointed_iteration.txt       "release" or an iteration number
 *   <dir>/release/mp_rank_00/model_optim_rng.pt    (or iter_0000123/…): a torch zip with a pickle
 *
 * The pickle is read by the restricted unpickler (pickle.ts); tensors are read from the zip on
 * demand. Names map as Megatron-core lays them out:
 *  - attention and MLP pre-norms are fused into the next linear (`linear_qkv.layer_norm_weight`,
 *    `linear_fc1.layer_norm_weight`; `input_layernorm` / `pre_mlp_layernorm` in the local
 *    implementation); Mamba layers keep `norm.weight`;
 *  - `linear_qkv.weight` holds, per query group, [the group's q heads | k | v]; Strata's qkv is
 *    [all q | all k | all v], so the rows are permuted;
 *  - `conv1d.weight` is [C, 1, K] (Strata: [C, K]); `_extra_state` entries are skipped;
 *  - SSM parameters (A_log, D, dt_bias) are upcast to fp32, like every Strata SSM parameter.
 * A GPT checkpoint's layer j (attention + MLP) becomes Strata blocks 2j ("*") and 2j+1 ("-").
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";
import { allocateLayers } from "../dsl/model.js";
import type { ArchSpec, LayerSpec, ParamInfo } from "./arch-spec.js";
import { ConfigReader } from "./config.js";
import { modelNameFrom, type SrcRef, type WeightMapper } from "./hf.js";
import { checkedRules, writeArch, writeWeights } from "./import.js";
import { namespaceToObject, TorchTensor, torchPersistentLoad, unpickle } from "./pickle.js";
import { DTYPE_BYTES, numel, shapeText, type SourceTensor, type TensorSource } from "./tensor-io.js";
import { ZipFile } from "./zip.js";

/** The model_optim_rng.pt of a checkpoint folder (or the file itself). */
export function resolveCheckpoint(input: string): { file: string; label: string } {
  if (!existsSync(input)) throw new StrataError(`not found: ${input}`, undefined, "give a Megatron-LM checkpoint folder (with latest_checkpointed_iteration.txt) or a model_optim_rng.pt");
  if (statSync(input).isFile()) return { file: input, label: path.basename(input) };
  const tracker = path.join(input, "latest_checkpointed_iteration.txt");
  let sub: string;
  if (existsSync(tracker)) {
    const it = readFileSync(tracker, "utf8").trim();
    if (it === "release") sub = "release";
    else if (/^\d+$/.test(it)) sub = `iter_${it.padStart(7, "0")}`;
    else throw new StrataError(`${tracker}: holds ${JSON.stringify(it)}, expected "release" or an iteration number`);
  } else if (existsSync(path.join(input, "mp_rank_00"))) sub = ".";
  else throw new StrataError(`${input}: no latest_checkpointed_iteration.txt and no mp_rank_00/ folder`, undefined, "give the folder Megatron-LM saved (--save), or the model_optim_rng.pt itself");
  const base = path.join(input, sub);
  if (!existsSync(base)) throw new StrataError(`${input}: the tracker names ${sub}/ but it does not exist`);
  const ranks = readdirSync(base).filter((d) => /^mp_rank_\d\d/.test(d));
  if (ranks.some((r) => r !== "mp_rank_00" && r !== "mp_rank_00_000"))
    throw new StrataError(`${base}: holds ${ranks.join(", ")}: tensor- or pipeline-parallel shards are not supported`, undefined, "convert to TP=1, PP=1 first (Megatron-LM's tools/checkpoint/convert.py --target-tensor-parallel-size 1 --target-pipeline-parallel-size 1)");
  const file = path.join(base, ranks[0] ?? "mp_rank_00", "model_optim_rng.pt");
  if (!existsSync(file)) throw new StrataError(`${input}: expected ${path.relative(input, file)}`, undefined, "distributed (torch_dist) checkpoints are not supported; save with --ckpt-format torch");
  return { file, label: `${sub === "." ? "" : `${sub}/`}${path.basename(path.dirname(file))}` };
}

export interface TorchCheckpoint {
  root: unknown;
  zip: ZipFile;
  prefix: string;
  file: string;
}

/** Open a torch zip checkpoint and unpickle its data.pkl (no tensor data is read yet). */
export function readTorchCheckpoint(file: string, allow: readonly string[] = []): TorchCheckpoint {
  const zip = new ZipFile(file);
  const pkl = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    zip.close();
    throw new StrataError(`${file}: a zip without <name>/data.pkl is not a torch checkpoint`);
  }
  const prefix = pkl.slice(0, -"/data.pkl".length);
  const root = unpickle(zip.read(pkl), { file: `${file}:${pkl}`, allow }, torchPersistentLoad(file));
  return { root, zip, prefix, file };
}

/** A TensorSource over the tensors of a state dict inside a torch checkpoint. */
export function stateDictSource(ck: TorchCheckpoint, sd: Map<unknown, unknown>): TensorSource {
  const tensors = new Map<string, SourceTensor>();
  const entries = new Map<string, ReturnType<ZipFile["ranged"]>>();
  for (const [k, v] of sd) {
    if (!(v instanceof TorchTensor)) continue;
    const name = String(k);
    const es = DTYPE_BYTES[v.storage.dtype];
    const entry = `${ck.prefix}/data/${v.storage.key}`;
    const nbytes = numel(v.shape) * es;
    tensors.set(name, {
      name,
      dtype: v.storage.dtype,
      shape: v.shape,
      read(start, len) {
        if (!v.isContiguous) throw new StrataError(`${ck.file}: tensor '${name}' ${shapeText(v.shape)} has strides [${v.stride.join(", ")}], not contiguous`, undefined, "save the checkpoint with contiguous tensors (t.contiguous())");
        if (!entries.has(entry)) entries.set(entry, ck.zip.ranged(entry));
        const r = entries.get(entry)!;
        const base = v.offset * es;
        if (base + nbytes > r.size) throw new StrataError(`${ck.file}: tensor '${name}' needs bytes [${base}, ${base + nbytes}) of storage ${v.storage.key}, which has ${r.size}`);
        return r.read(base + start, len);
      },
    });
  }
  return { describe: ck.file, tensors, close: () => ck.zip.close() };
}

// ---- args → spec ------------------------------------------------------------------------------

export function specFromArgs(args: Record<string, unknown>, src: TensorSource, file: string, name: string): { spec: ArchSpec; notes: string[] } {
  const c = new ConfigReader(`${file} (saved args)`, args);
  const notes: string[] = [];
  const d = c.int("hidden_size");
  const emb = src.tensors.get("embedding.word_embeddings.weight");
  if (!emb) throw new StrataError(`${file}: no 'embedding.word_embeddings.weight' in the model state dict`);
  const vocab = emb.shape[0]!;
  if (c.raw.add_bias_linear !== false && c.raw.add_bias_linear !== undefined) c.fail("add_bias_linear", "linear biases are not supported: Strata's layers have none", "models trained with --disable-bias-linear import");
  const normKind = c.str("normalization", "LayerNorm");
  const norm = normKind === "RMSNorm" ? "rmsnorm" : normKind === "LayerNorm" ? (c.raw.apply_layernorm_1p === true ? "layernorm1p" : "layernorm") : c.fail("normalization", "unsupported", "RMSNorm or LayerNorm");
  const heads = c.int("num_attention_heads");
  const kvHeads = c.raw.group_query_attention === true ? c.int("num_query_groups") : heads;
  const headDim = c.has("kv_channels") ? c.int("kv_channels") : d / heads;
  const pos = c.str("position_embedding_type", "learned_absolute");
  let rope: AttentionRope = false;
  if (pos === "rope") rope = { fraction: c.num("rotary_percent", 1), theta: c.num("rotary_base", 10000) };
  else if (pos !== "none") c.fail("position_embedding_type", "only 'rope' and 'none' are supported");
  if (c.raw.rotary_interleaved === true) c.fail("rotary_interleaved", "interleaved RoPE is not supported (Strata rotates halves, as Megatron's default)");
  if (c.raw.qk_layernorm === true) c.fail("qk_layernorm", "QK layer norm is not supported");
  const act = c.raw.swiglu === true ? "swiglu" : c.raw.squared_relu === true ? "relu2" : "gelu";
  if (c.raw.openai_gelu === true || c.raw.onnx_safe === true) notes.push("openai_gelu / onnx_safe: Strata uses exact (erf) GeLU.");
  const ffn = c.int("ffn_hidden_size", 4 * d);
  const L = c.int("num_layers");
  const isHybrid = [...src.tensors.keys()].some((k) => k.endsWith(".mixer.A_log")) || c.has("hybrid_override_pattern") || c.has("hybrid_attention_ratio");
  const symbols: Record<string, LayerSpec> = {};
  let pattern: string;
  let initLayers: number | undefined;
  if (isHybrid) {
    const pat = c.raw.hybrid_override_pattern;
    pattern = typeof pat === "string" && pat.length ? pat : allocateLayers(L, c.num("hybrid_attention_ratio", 0), c.num("hybrid_mlp_ratio", 0));
    if (pattern.length !== L) c.fail("hybrid_override_pattern", `has ${pattern.length} layers but num_layers = ${L}`);
    const bad = [...pattern].find((ch) => !"M*-".includes(ch));
    if (bad) c.fail("hybrid_override_pattern", `layer symbol '${bad}' is not supported`, "M (Mamba-2), * (attention), - (MLP)");
    if (pattern.includes("M")) {
      const mh = c.int("mamba_head_dim", 64);
      const inner = 2 * d; // Megatron's MambaMixer: expand = 2
      symbols.M = { kind: "mamba2", opts: { dState: c.int("mamba_state_dim", 128), headDim: mh, groups: c.int("mamba_num_groups", 8), expand: 2, dConv: 4, chunk: 128, normEps: 1e-5 } };
      if (inner % mh) c.fail("mamba_head_dim", `does not divide d_inner = 2·hidden_size = ${inner}`);
    }
  } else {
    pattern = "*-".repeat(L);
    initLayers = L;
  }
  if (pattern.includes("*")) symbols["*"] = { kind: "attention", opts: { heads, kvHeads, headDim, ...(rope ? { rope } : {}) } };
  if (pattern.includes("-")) symbols["-"] = { kind: "mlp", opts: { hidden: ffn, act } };
  const seq = c.has("seq_length") ? c.int("seq_length") : undefined;
  const spec: ArchSpec = {
    name,
    vocab,
    dModel: d,
    norm,
    normEps: c.num("norm_epsilon", 1e-5),
    tiedEmbeddings: c.raw.untie_embeddings_and_output_weights !== true,
    ...(seq !== undefined ? { seqLen: seq } : {}),
    ...(initLayers !== undefined ? { initLayers } : {}),
    pattern,
    symbols,
    header: [],
  };
  if (vocab !== c.raw.padded_vocab_size && c.has("padded_vocab_size")) notes.push(`vocab ${vocab} from the embedding (padded_vocab_size in args: ${String(c.raw.padded_vocab_size)}).`);
  return { spec, notes };
}

type AttentionRope = false | { fraction: number; theta: number };

// ---- names --------------------------------------------------------------------------------------

/** Megatron-core names → Strata parameters for `spec` (hybrid: layer i ↔ block i; GPT: layer j ↔ blocks 2j, 2j+1). */
export function megatronMapper(spec: ArchSpec): WeightMapper {
  const gpt = /^(\*-)+$/.test(spec.pattern) && spec.initLayers !== undefined;
  const pick = (has: (n: string) => boolean, alts: string[]) => alts.find(has) ?? alts[0]!;
  return {
    sources(p: ParamInfo, has): SrcRef[] {
      const same = (n: string): SrcRef[] => [{ name: n, shape: p.shape }];
      if (p.name === "embedding.weight") return same("embedding.word_embeddings.weight");
      if (p.name === "lm_head.weight") return same("output_layer.weight");
      if (p.name.startsWith("final_norm.")) {
        const w = p.name.endsWith(".bias") ? "bias" : "weight";
        return same(pick(has, [`decoder.final_norm.${w}`, `decoder.final_layernorm.${w}`]));
      }
      const i = Number(/^layers\.(\d+)\./.exec(p.name)![1]);
      const rest = p.name.slice(`layers.${i}.`.length);
      const sym = spec.pattern[i]!;
      const j = gpt ? Math.floor(i / 2) : i;
      const L = `decoder.layers.${j}.`;
      const kind = spec.symbols[sym]!.kind;
      if (rest.startsWith("norm.")) {
        const w = rest.slice("norm.".length); // weight | bias
        const fused = w === "weight" ? "layer_norm_weight" : "layer_norm_bias";
        if (kind === "attention") return same(pick(has, [`${L}self_attention.linear_qkv.${fused}`, `${L}input_layernorm.${w}`]));
        if (kind === "mlp") return same(pick(has, [`${L}mlp.linear_fc1.${fused}`, `${L}pre_mlp_layernorm.${w}`]));
        return same(pick(has, [`${L}norm.${w}`, `${L}mixer.in_proj.${fused}`]));
      }
      const m = rest.slice("mixer.".length);
      if (kind === "attention") {
        if (m === "o_proj.weight") return same(`${L}self_attention.linear_proj.weight`);
        const o = spec.symbols[sym]!.opts as { heads: number; kvHeads?: number; headDim?: number };
        const H = o.heads, G = o.kvHeads ?? H, hd = o.headDim ?? spec.dModel / H;
        const name = `${L}self_attention.linear_qkv.weight`;
        const shape = [(H + 2 * G) * hd, spec.dModel];
        const qn = (H / G) * hd, blk = qn + 2 * hd;
        const rows = (off: number, len: number): SrcRef[] => Array.from({ length: G }, (_, g) => ({ name, shape, rows: [g * blk + off, g * blk + off + len] as [number, number] }));
        return [...rows(0, qn), ...rows(qn, hd), ...rows(qn + hd, hd)];
      }
      if (kind === "mlp") return same(`${L}mlp.${m === "fc1.weight" ? "linear_fc1.weight" : "linear_fc2.weight"}`);
      if (m === "conv1d.weight") return [{ name: `${L}mixer.conv1d.weight`, shape: [p.shape[0]!, 1, p.shape[1]!] }];
      return same(`${L}mixer.${m}`);
    },
    ignore: (n) => n.endsWith("._extra_state") || n.endsWith("inv_freq") || (spec.tiedEmbeddings && n === "output_layer.weight"),
  };
}

// ---- command ------------------------------------------------------------------------------------

export interface MegatronImport {
  checkpoint: string;
  weightsFile: string;
  archFile?: string;
  notes: string[];
  params: number;
  tensors: number;
}

export async function importMegatron(input: string, o: { out: string; arch?: string; useArch?: string; name?: string; allowGlobal?: string[] }): Promise<MegatronImport> {
  const { file, label } = resolveCheckpoint(input);
  const ck = readTorchCheckpoint(file, o.allowGlobal);
  const root = ck.root;
  if (!(root instanceof Map)) throw new StrataError(`${file}: the pickle holds a ${typeof root}, not a dict (Megatron saves {'args', 'model', 'iteration', …})`);
  const sd = root.get("model") ?? root.get("model0");
  if (!(sd instanceof Map)) throw new StrataError(`${file}: no 'model' state dict (keys: ${[...root.keys()].map(String).join(", ")})`, undefined, "virtual-pipeline checkpoints (model0, model1, …) are not supported");
  const src = stateDictSource(ck, sd);
  try {
    const notes: string[] = [];
    let spec: ArchSpec;
    let archFile: string | undefined;
    if (o.useArch) {
      const { loadModel } = await import("../cli/load.js");
      const def = await loadModel(o.useArch, { check: false });
      spec = specFromModelDef(def);
    } else {
      const args = namespaceToObject(root.get("args"));
      if (!args) throw new StrataError(`${file}: the checkpoint has no saved args to build an architecture from`, undefined, "pass --use-arch arch.ts with the matching Strata architecture");
      const name = o.name ?? modelNameFrom(path.basename(path.resolve(input)).replace(/\.pt$/, ""), "megatron-import");
      const r = specFromArgs(args, src, file, name);
      spec = r.spec;
      notes.push(...r.notes);
      spec.header = [
        `Megatron-LM checkpoint ${label} imported by \`strata import-megatron\` from its saved args.`,
        ...(spec.symbols.M ? ["Mamba-2's gated RMSNorm is per group, as in Megatron-LM."] : []),
        ...(spec.symbols["-"] ? [`MLP activation ${(spec.symbols["-"].opts as { act: string }).act}: ${args.squared_relu ? "--squared-relu" : args.swiglu ? "--swiglu" : "Megatron's default, F.gelu (exact erf GeLU)"}.`] : []),
        ...notes,
      ];
      archFile = o.arch ?? path.join(path.dirname(path.resolve(o.out)), `${spec.name}.ts`);
    }
    checkedRules(spec, megatronMapper(spec), src, `import-megatron ${label}`); // nothing is written when the weights do not fit
    if (archFile) writeArch(spec, archFile);
    const stats = writeWeights(spec, megatronMapper(spec), src, o.out, `import-megatron ${label}`, { source: "megatron-lm" });
    return { checkpoint: label, weightsFile: o.out, archFile, notes, ...stats };
  } finally {
    src.close();
  }
}

/** An ArchSpec that rebuilds an already-loaded model (for --use-arch). */
export function specFromModelDef(def: import("../dsl/model.js").ModelDef): ArchSpec {
  const symbols: Record<string, LayerSpec> = {};
  const syms = def.stack?.symbols ?? {};
  for (const [s, l] of Object.entries(syms)) {
    if (!["mamba2", "mamba", "attention", "mlp"].includes(l.kind)) throw new StrataError(`layer '${s}' is a custom '${l.kind}' layer; checkpoint import knows mamba2, mamba, attention and mlp`);
    symbols[s] = { kind: l.kind, opts: { ...(l.config as object) } } as LayerSpec;
  }
  if (!def.stack) throw new StrataError(`${def.config.name}: import needs a model built with stack({...})`);
  const c = def.config;
  return { name: c.name, vocab: c.vocab, dModel: c.dModel, norm: c.norm, normEps: c.normEps, tiedEmbeddings: c.tiedEmbeddings, seqLen: c.seqLen, ...(c.initLayers !== undefined ? { initLayers: c.initLayers } : {}), pattern: def.pattern, symbols, header: [] };
}
