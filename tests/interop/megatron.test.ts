/**
 * The restricted unpickler, the zip reader and import-megatron, on pickles and torch zip
 * checkpoints written here (tests/interop/torch-writer.ts): containers and tensor rebuilds come
 * back as data, unknown globals are refused by name, and a Megatron-layout hybrid (fused
 * pre-norms, per-group interleaved QKV, conv1d [C, 1, K], _extra_state, bf16 SSM parameters)
 * imports to exactly the tensors of the same model imported from its Hugging Face form. A
 * Megatron GPT checkpoint (LayerNorm-1p with biases, RoPE on half of each head, MHA interleave)
 * maps to the Transformer layout.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Opaque, TorchTensor, namespaceToObject, torchPersistentLoad, unpickle } from "../../compiler/interop/pickle.js";
import { ZipFile } from "../../compiler/interop/zip.js";
import { importMegatron, resolveCheckpoint } from "../../compiler/interop/megatron.js";
import { importHf } from "../../compiler/interop/import.js";
import { readSafetensors } from "../../compiler/io/safetensors.js";
import { Pickler, bf16Bytes, writeZip } from "./torch-writer.js";
import { SEED, hfTensors, nemotronConfig, randomValues, rng, writeHfModel } from "./fixtures.js";

const tmp = mkdtempSync(path.join(tmpdir(), "strata-megatron-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const fail = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("did not throw");
};

describe("restricted unpickler", () => {
  it("rebuilds dicts, lists, tuples, numbers, strings, OrderedDicts, Namespaces and tensors (memo included)", () => {
    const p = new Pickler();
    p.emptyDict().put().mark();
    p.str("iteration").int(123456);
    p.str("neg").int(-5);
    p.str("big").int(2 ** 40);
    p.str("lr").float(2.5e-4);
    p.str("name").str("hybrid ü");
    p.str("list").value([1, "two", null, true]);
    p.str("tuple").value([3, 4], true);
    // args: argparse.Namespace via NEWOBJ + BUILD, with a torch dtype as an inert value
    p.str("args").global("argparse", "Namespace").emptyTuple().newobj().put();
    p.emptyDict().mark().str("hidden_size").int(256).str("params_dtype").global("torch", "bfloat16").str("swiglu").bool(false).setitems().build();
    // model: OrderedDict of two tensors sharing one storage, the second through the memo
    p.str("model").global("collections", "OrderedDict").emptyTuple().reduce().put().mark();
    p.str("a").tensor("BFloat16Storage", "0", 12, [3, 4]);
    p.str("b").tensor("BFloat16Storage", "0", 12, [2, 2], 8);
    p.setitems();
    p.str("again").get(0 + 2); // memo 2 = the OrderedDict ("model")
    p.setitems().stop();
    const v = unpickle(p.done(), { file: "t.pkl" }, torchPersistentLoad("t.pt")) as Map<string, unknown>;
    expect(v.get("iteration")).toBe(123456);
    expect(v.get("neg")).toBe(-5);
    expect(v.get("big")).toBe(2 ** 40);
    expect(v.get("lr")).toBe(2.5e-4);
    expect(v.get("name")).toBe("hybrid ü");
    expect(v.get("list")).toEqual([1, "two", null, true]);
    expect(v.get("tuple")).toEqual([3, 4]);
    const args = namespaceToObject(v.get("args"))!;
    expect(args.hidden_size).toBe(256);
    expect(args.swiglu).toBe(false);
    expect((args.params_dtype as Opaque).global).toBe("torch.bfloat16");
    const model = v.get("model") as Map<string, TorchTensor>;
    expect([...model.keys()]).toEqual(["a", "b"]);
    const b = model.get("b")!;
    expect(b).toBeInstanceOf(TorchTensor);
    expect(b.storage).toMatchObject({ key: "0", dtype: "BF16", numel: 12, location: "cpu" });
    expect([b.offset, b.shape, b.stride, b.isContiguous]).toEqual([8, [2, 2], [2, 1], true]);
    expect(v.get("again")).toBe(model);
  });

  it("refuses an unknown global by name and never runs it; --allow-global reads it as inert data", () => {
    const p = new Pickler();
    p.global("os", "system").str("echo pwned").value([], true).reduce().stop();
    const bytes = p.done();
    expect(fail(() => unpickle(bytes, { file: "evil.pkl" }))).toMatch(/evil\.pkl: pickle byte \d+: global 'os\.system' is not allowed[^]*hint: if 'os\.system' is plain data[^]*--allow-global os\.system/);
    const q = new Pickler();
    q.global("my_trainer.enums", "Phase").mark().int(1).tuple().reduce().stop();
    expect(fail(() => unpickle(q.done(), { file: "e.pkl" }))).toMatch(/global 'my_trainer\.enums\.Phase' is not allowed/);
    const inert = unpickle(q.done(), { file: "e.pkl", allow: ["my_trainer.enums.Phase"] });
    expect(inert).toBeInstanceOf(Opaque);
    expect((inert as Opaque).global).toBe("my_trainer.enums.Phase");
    expect((inert as Opaque).args).toEqual([1]);
    // Megatron's own args enum (args.model_type) is inert by default
    const m = new Pickler().global("megatron.core.enums", "ModelType").mark().int(1).tuple().reduce().stop().done();
    expect((unpickle(m, { file: "m.pkl" }) as Opaque).global).toBe("megatron.core.enums.ModelType");
  });

  it("reports unsupported opcodes, truncation and bad persistent ids", () => {
    expect(fail(() => unpickle(Buffer.from([0x80, 2, 0x56]), { file: "u.pkl" }))).toMatch(/u\.pkl: pickle byte 2: unsupported pickle opcode 0x56/);
    const p = new Pickler().str("abc").done();
    expect(fail(() => unpickle(p.subarray(0, p.length - 1), { file: "t.pkl" }))).toMatch(/unexpected end of data/);
    const q = new Pickler().mark().str("shm").int(1).tuple().persid().stop().done();
    expect(fail(() => unpickle(q, { file: "q" }, torchPersistentLoad("q.pt")))).toMatch(/unknown persistent id "shm"/);
  });
});

describe("zip reader", () => {
  it("reads stored and deflated entries, and byte ranges of stored ones", () => {
    const f = path.join(tmp, "z.zip");
    const big = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    writeZip(f, [{ name: "a/data.pkl", data: Buffer.from("hello"), deflate: true }, { name: "a/data/0", data: big }]);
    const z = new ZipFile(f);
    try {
      expect(z.read("a/data.pkl").toString()).toBe("hello");
      expect(z.ranged("a/data/0").read(1000, 10).equals(big.subarray(1000, 1010))).toBe(true);
      expect(fail(() => z.read("a/nope"))).toMatch(/no entry 'a\/nope'/);
    } finally {
      z.close();
    }
    // zip64 (a checkpoint over 4 GB): sizes and offsets from the zip64 extra field and end record
    const f64 = path.join(tmp, "z64.zip");
    writeZip(f64, [{ name: "a/data.pkl", data: Buffer.from("pickle") }, { name: "a/data/0", data: big }], { zip64: true });
    const y = new ZipFile(f64);
    try {
      expect(y.entries.get("a/data/0")).toMatchObject({ size: 5000, compressedSize: 5000 });
      expect(y.read("a/data.pkl").toString()).toBe("pickle");
      expect(y.ranged("a/data/0").read(4990, 10).equals(big.subarray(4990))).toBe(true);
    } finally {
      y.close();
    }
    writeFileSync(path.join(tmp, "legacy.pt"), Buffer.from("\x80\x02not a zip at all, an old torch file"));
    expect(fail(() => new ZipFile(path.join(tmp, "legacy.pt")))).toMatch(/not a zip file[^]*re-saved with torch\.save/);
  });
});

// ---- Megatron checkpoints --------------------------------------------------------------------

interface MTensor { name: string; shape: number[]; values: Float32Array }

/** Write `{args, checkpoint_version, iteration, model, rng_state}` as torch.save would (bf16 storages). */
function writeMegatron(dir: string, args: Record<string, unknown>, tensors: MTensor[], o: { extraState?: boolean; evilGlobal?: boolean } = {}): void {
  const p = new Pickler();
  p.emptyDict().put().mark();
  p.str("args").global("argparse", "Namespace").emptyTuple().newobj().put().value(args).build();
  p.str("checkpoint_version").float(3.0).str("iteration").int(0);
  p.str("model").global("collections", "OrderedDict").emptyTuple().reduce().put().mark();
  const storages: { name: string; data: Buffer }[] = [];
  tensors.forEach((t, i) => {
    p.str(t.name).tensor("BFloat16Storage", String(i), t.values.length, t.shape);
    storages.push({ name: `model_optim_rng/data/${i}`, data: bf16Bytes(t.values) });
    if (o.extraState && t.name.endsWith("in_proj.weight")) p.str(t.name.replace(/weight$/, "_extra_state")).global("_io", "BytesIO").mark().bytes(Buffer.from("te")).tuple().reduce();
  });
  p.setitems();
  if (o.evilGlobal) p.str("hook").global("builtins", "eval").str("1").value([], true).reduce();
  p.str("rng_state").value([{ random_rng_state: [3, [1, 2, 3], null] }]);
  p.setitems().stop();
  const ck = path.join(dir, "release", "mp_rank_00");
  mkdirSync(ck, { recursive: true });
  writeFileSync(path.join(dir, "latest_checkpointed_iteration.txt"), "release\n");
  writeZip(path.join(ck, "model_optim_rng.pt"), [{ name: "model_optim_rng/data.pkl", data: p.done(), deflate: true }, ...storages, { name: "model_optim_rng/version", data: Buffer.from("3\n") }]);
}

/** Megatron-core names for the NemotronH fixture's HF tensors (interleave written by hand). */
function megatronFromHf(cfg: typeof nemotronConfig, hf: Map<string, Float32Array>): MTensor[] {
  const shapes = new Map(hfTensors(cfg).map((t) => [t.name, t.shape]));
  const out: MTensor[] = [];
  const put = (name: string, src: string) => out.push({ name, shape: shapes.get(src)!, values: hf.get(src)! });
  put("embedding.word_embeddings.weight", "backbone.embeddings.weight");
  const d = cfg.hidden_size, H = cfg.num_attention_heads, G = cfg.num_key_value_heads, hd = cfg.head_dim;
  [...cfg.hybrid_override_pattern].forEach((c, i) => {
    const L = `backbone.layers.${i}.`, M = `decoder.layers.${i}.`;
    if (c === "M") {
      put(`${M}norm.weight`, `${L}norm.weight`);
      for (const n of ["in_proj.weight", "conv1d.weight", "conv1d.bias", "A_log", "D", "dt_bias", "norm.weight", "out_proj.weight"]) put(`${M}mixer.${n}`, `${L}mixer.${n}`);
    } else if (c === "*") {
      put(`${M}self_attention.linear_qkv.layer_norm_weight`, `${L}norm.weight`);
      const q = hf.get(`${L}mixer.q_proj.weight`)!, k = hf.get(`${L}mixer.k_proj.weight`)!, v = hf.get(`${L}mixer.v_proj.weight`)!;
      const qkv = new Float32Array((H + 2 * G) * hd * d);
      let o = 0;
      const per = (H / G) * hd * d;
      for (let g = 0; g < G; g++) {
        qkv.set(q.subarray(g * per, (g + 1) * per), o); o += per;
        qkv.set(k.subarray(g * hd * d, (g + 1) * hd * d), o); o += hd * d;
        qkv.set(v.subarray(g * hd * d, (g + 1) * hd * d), o); o += hd * d;
      }
      out.push({ name: `${M}self_attention.linear_qkv.weight`, shape: [(H + 2 * G) * hd, d], values: qkv });
      put(`${M}self_attention.linear_proj.weight`, `${L}mixer.o_proj.weight`);
    } else {
      put(`${M}mlp.linear_fc1.layer_norm_weight`, `${L}norm.weight`);
      put(`${M}mlp.linear_fc1.weight`, `${L}mixer.up_proj.weight`);
      put(`${M}mlp.linear_fc2.weight`, `${L}mixer.down_proj.weight`);
    }
  });
  put("decoder.final_norm.weight", "backbone.norm_f.weight");
  put("output_layer.weight", "lm_head.weight");
  return out;
}

// 3 query groups of 3 heads: the interleave is not the identity
const hybridCfg = { ...nemotronConfig, num_attention_heads: 9, num_key_value_heads: 3 };
const hybridArgs = {
  hidden_size: hybridCfg.hidden_size, num_layers: hybridCfg.hybrid_override_pattern.length, hybrid_override_pattern: hybridCfg.hybrid_override_pattern,
  num_attention_heads: 9, group_query_attention: true, num_query_groups: 3, kv_channels: 32, ffn_hidden_size: hybridCfg.intermediate_size,
  squared_relu: true, normalization: "RMSNorm", position_embedding_type: "none", mamba_state_dim: hybridCfg.ssm_state_size,
  mamba_head_dim: hybridCfg.mamba_head_dim, mamba_num_groups: hybridCfg.n_groups, untie_embeddings_and_output_weights: true,
  add_bias_linear: false, norm_epsilon: 1e-5, seq_length: 512, padded_vocab_size: hybridCfg.vocab_size,
};

describe("import-megatron", () => {
  it("a hybrid checkpoint imports to the same tensors as the same model from Hugging Face, and the same architecture", async () => {
    // Megatron's d_inner is 2·hidden: give the HF twin expand 2 (8 heads of 64 at hidden 256)
    const cfg = { ...hybridCfg, hidden_size: 256, mamba_num_heads: 8, intermediate_size: 512 };
    const hfDir = path.join(tmp, "hf-twin");
    const hf = writeHfModel(hfDir, cfg, { seed: SEED + 5 });
    importHf(hfDir, { out: path.join(hfDir, "arch.ts"), weightsOut: path.join(hfDir, "w.safetensors"), name: "twin" });
    const mdir = path.join(tmp, "megatron-hybrid");
    writeMegatron(mdir, { ...hybridArgs, hidden_size: 256, ffn_hidden_size: 512 }, megatronFromHf(cfg, hf), { extraState: true });
    const r = await importMegatron(mdir, { out: path.join(tmp, "mh.safetensors"), name: "twin" });
    expect(r.checkpoint).toBe("release/mp_rank_00");
    const a = readSafetensors(path.join(hfDir, "w.safetensors"));
    const b = readSafetensors(path.join(tmp, "mh.safetensors"));
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, t] of a) {
      const u = b.get(k)!;
      expect([u.dtype, u.shape], k).toEqual([t.dtype, t.shape]);
      expect(Buffer.from(u.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    }
    expect(b.get("layers.0.mixer.A_log")!.dtype).toBe("F32"); // bf16 in the checkpoint, upcast
    const arch = readFileSync(r.archFile!, "utf8");
    expect(arch).toContain(`pattern: "${cfg.hybrid_override_pattern}"`);
    expect(arch).toContain('M: mamba2({ dState: 64, headDim: 64, groups: 2, expand: 2, dConv: 4, chunk: 128, normEps: 1e-5 })');
    expect(arch).toContain('"*": attention({ heads: 9, kvHeads: 3, headDim: 32 })');
    expect(arch).toContain('"-": mlp({ hidden: 512, act: "relu2" })');
    expect(arch).toContain("MLP activation relu2: --squared-relu.");
    // --use-arch: map onto an existing architecture file instead of the saved args
    const u = await importMegatron(mdir, { out: path.join(tmp, "mh2.safetensors"), useArch: path.join(hfDir, "arch.ts") });
    expect(u.archFile).toBeUndefined();
    const c = readSafetensors(path.join(tmp, "mh2.safetensors"));
    for (const [k, t] of a) expect(Buffer.from(c.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
  });

  it("a GPT checkpoint: LayerNorm-1p with biases (fused into the next linear), RoPE on half of each head, per-head QKV interleave, GeLU by default", async () => {
    const d = 64, H = 2, hd = 32, F = 128, V = 96, L = 2;
    const next = rng(SEED + 11);
    const rnd = (shape: number[]) => randomValues({ name: "", shape }, next);
    const tensors: MTensor[] = [];
    const add = (name: string, shape: number[]) => {
      const t = { name, shape, values: rnd(shape) };
      tensors.push(t);
      return t;
    };
    add("embedding.word_embeddings.weight", [V, d]);
    for (let j = 0; j < L; j++) {
      const M = `decoder.layers.${j}.`;
      add(`${M}self_attention.linear_qkv.layer_norm_weight`, [d]);
      add(`${M}self_attention.linear_qkv.layer_norm_bias`, [d]);
      add(`${M}self_attention.linear_qkv.weight`, [3 * H * hd, d]);
      add(`${M}self_attention.linear_proj.weight`, [d, H * hd]);
      add(`${M}mlp.linear_fc1.layer_norm_weight`, [d]);
      add(`${M}mlp.linear_fc1.layer_norm_bias`, [d]);
      add(`${M}mlp.linear_fc1.weight`, [F, d]);
      add(`${M}mlp.linear_fc2.weight`, [d, F]);
    }
    add("decoder.final_layernorm.weight", [d]);
    add("decoder.final_layernorm.bias", [d]);
    add("output_layer.weight", [V, d]);
    const dir = path.join(tmp, "megatron-gpt");
    writeMegatron(dir, { hidden_size: d, num_layers: L, num_attention_heads: H, ffn_hidden_size: F, normalization: "LayerNorm", apply_layernorm_1p: true, position_embedding_type: "rope", rotary_percent: 0.5, untie_embeddings_and_output_weights: true, add_bias_linear: false, seq_length: 128 }, tensors);
    const r = await importMegatron(dir, { out: path.join(tmp, "gpt.safetensors"), name: "gpt" });
    const arch = readFileSync(r.archFile!, "utf8");
    expect(arch).toMatch(/norm: "layernorm1p"[^]*initLayers: 2[^]*pattern: "\*-\*-"[^]*attention\(\{ heads: 2, kvHeads: 2, headDim: 32, rope: \{ fraction: 0.5, theta: 10000 \} \}\)[^]*mlp\(\{ hidden: 128, act: "gelu" \}\)/);
    const w = readSafetensors(path.join(tmp, "gpt.safetensors"));
    const src = new Map(tensors.map((t) => [t.name, t.values]));
    for (let j = 0; j < L; j++) {
      const M = `decoder.layers.${j}.`;
      expect(w.get(`layers.${2 * j}.norm.bias`)!.data).toEqual(src.get(`${M}self_attention.linear_qkv.layer_norm_bias`));
      expect(w.get(`layers.${2 * j + 1}.norm.weight`)!.data).toEqual(src.get(`${M}mlp.linear_fc1.layer_norm_weight`));
      // Megatron rows: [q0 k0 v0 | q1 k1 v1]; Strata: [q0 q1 | k0 k1 | v0 v1]
      const m = src.get(`${M}self_attention.linear_qkv.weight`)!, s = w.get(`layers.${2 * j}.mixer.qkv.weight`)!.data as Float32Array;
      const blk = hd * d;
      const order = [0, 3, 1, 4, 2, 5]; // Strata block b comes from Megatron block order[b]
      order.forEach((from, to) => expect(s.subarray(to * blk, (to + 1) * blk)).toEqual(m.subarray(from * blk, (from + 1) * blk)));
    }
    expect(w.get("final_norm.bias")!.data).toEqual(src.get("decoder.final_layernorm.bias"));
  });

  it("errors: a global outside the allow-list, tensor-parallel shards, a missing tensor", async () => {
    const dir = path.join(tmp, "megatron-evil");
    writeMegatron(dir, hybridArgs, [], { evilGlobal: true });
    await expect(importMegatron(dir, { out: path.join(tmp, "e.safetensors") })).rejects.toThrow(/global 'builtins\.eval' is not allowed/);
    const tp = path.join(tmp, "megatron-tp");
    mkdirSync(path.join(tp, "release", "mp_rank_00"), { recursive: true });
    mkdirSync(path.join(tp, "release", "mp_rank_01"), { recursive: true });
    writeFileSync(path.join(tp, "latest_checkpointed_iteration.txt"), "release");
    expect(fail(() => resolveCheckpoint(tp))).toMatch(/mp_rank_00, mp_rank_01: tensor- or pipeline-parallel shards are not supported[^]*--target-tensor-parallel-size 1/);
    const cfg = { ...hybridCfg, hidden_size: 256, mamba_num_heads: 8, intermediate_size: 512 };
    const hf = writeHfModel(path.join(tmp, "hf-missing"), cfg, { seed: SEED });
    const mt = megatronFromHf(cfg, hf).filter((t) => t.name !== "decoder.layers.1.self_attention.linear_proj.weight");
    const md = path.join(tmp, "megatron-missing");
    writeMegatron(md, { ...hybridArgs, hidden_size: 256, ffn_hidden_size: 512 }, mt);
    await expect(importMegatron(md, { out: path.join(tmp, "m.safetensors") })).rejects.toThrow(/missing tensor 'decoder\.layers\.1\.self_attention\.linear_proj\.weight': expected shape \[256, 288\]/);
  });
});

describe("streaming writer", () => {
  it("converts bf16 → f32 and back across chunk boundaries, gathering row ranges of several sources", async () => {
    const { memorySource, writeMapped, checkRules } = await import("../../compiler/interop/tensor-io.js");
    const next = rng(SEED + 3);
    const a = randomValues({ name: "a", shape: [5, 3] }, next), b = randomValues({ name: "b", shape: [4, 3] }, next);
    const src = memorySource("mem", [
      { name: "a", dtype: "BF16", shape: [5, 3], bytes: bf16Bytes(a) },
      { name: "b", dtype: "BF16", shape: [4, 3], bytes: bf16Bytes(b) },
    ]);
    const rules = [
      { target: "ab", shape: [4, 3], dtype: "F32" as const, pieces: [{ src: "b", rows: [3, 4] as [number, number] }, { src: "a", rows: [1, 4] as [number, number] }] },
      { target: "a16", shape: [15], dtype: "BF16" as const, pieces: [{ src: "a" }] },
    ];
    expect(checkRules(rules, src, { expected: new Map([["a", [5, 3]], ["b", [4, 3]]]) })).toEqual([]);
    for (const chunkBytes of [2, 6, 1 << 20]) {
      const f = path.join(tmp, `chunks-${chunkBytes}.safetensors`);
      writeMapped(f, rules, src, undefined, { chunkBytes });
      const r = readSafetensors(f);
      expect(r.get("ab")!.data).toEqual(Float32Array.from([...b.subarray(9, 12), ...a.subarray(3, 12)]));
      expect(r.get("a16")!.data).toEqual(a);
    }
    expect(checkRules(rules, src, { expected: new Map([["a", [5, 3]]]) })).toEqual(["extra tensor 'b' [4, 3]: nothing in the model uses it"]);
  });
});

describe("saved args of the paper's checkpoints", () => {
  it("the 8B Mamba-2-Hybrid's args (Megatron-LM examples/mamba/train.sh, 8B) give examples/mamba2-hybrid-8b.ts, GeLU MLPs included", async () => {
    const { specFromArgs } = await import("../../compiler/interop/megatron.js");
    const { buildModel, modelParams } = await import("../../compiler/interop/arch-spec.js");
    const { memorySource } = await import("../../compiler/interop/tensor-io.js");
    const { default: hybrid8b } = await import("../../examples/mamba2-hybrid-8b.js");
    const emb = memorySource("ckpt", [{ name: "embedding.word_embeddings.weight", dtype: "BF16", shape: [256000, 4096], bytes: Buffer.alloc(0) }]);
    const args = { num_layers: 56, hidden_size: 4096, num_attention_heads: 32, group_query_attention: true, num_query_groups: 8, hybrid_attention_ratio: 0.08, hybrid_mlp_ratio: 0.5, position_embedding_type: "none", normalization: "RMSNorm", untie_embeddings_and_output_weights: true, add_bias_linear: false, seq_length: 4096 };
    const { spec } = specFromArgs(args, emb, "ckpt", "mamba2-hybrid-8b");
    const def = buildModel(spec);
    expect(def.pattern).toBe(hybrid8b.pattern);
    expect(modelParams(def)).toEqual(modelParams(hybrid8b));
    expect(def.toGraph().meta.layerKinds).toEqual(hybrid8b.toGraph().meta.layerKinds); // same layer configs: act "gelu", groups 8, …
    const { spec: t } = specFromArgs({ ...args, squared_relu: true }, emb, "ckpt", "x");
    expect((t.symbols["-"]!.opts as { act: string }).act).toBe("relu2");
  });

  it("the 8B Transformer's args (run_text_gen_server_8b_gpt3.sh) give examples/transformer-8b.ts", async () => {
    const { specFromArgs } = await import("../../compiler/interop/megatron.js");
    const { buildModel, modelParams } = await import("../../compiler/interop/arch-spec.js");
    const { memorySource } = await import("../../compiler/interop/tensor-io.js");
    const { default: t8b } = await import("../../examples/transformer-8b.js");
    const emb = memorySource("ckpt", [{ name: "embedding.word_embeddings.weight", dtype: "BF16", shape: [256000, 4096], bytes: Buffer.alloc(0) }]);
    const args = { num_layers: 32, hidden_size: 4096, num_attention_heads: 32, apply_layernorm_1p: true, normalization: "LayerNorm", position_embedding_type: "rope", rotary_percent: 0.5, squared_relu: true, untie_embeddings_and_output_weights: true, add_bias_linear: false, seq_length: 4096 };
    const def = buildModel(specFromArgs(args, emb, "ckpt", "transformer-8b").spec);
    expect(def.pattern).toBe(t8b.pattern);
    expect(def.config).toMatchObject({ norm: "layernorm1p", initLayers: 32, tiedEmbeddings: false });
    expect(modelParams(def)).toEqual(modelParams(t8b));
    expect(def.toGraph().meta.layerKinds).toEqual(t8b.toGraph().meta.layerKinds);
  });
});
