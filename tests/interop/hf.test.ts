/**
 * import-hf and export-hf on tiny checkpoints the tests write (tests/interop/fixtures.ts): the
 * generated DSL (snapshot, and loading it gives the same parameters), every Strata tensor against
 * the HF tensors it must come from (expected values built here by hand, not by the name maps),
 * sharded and `model.`-prefixed checkpoints, errors naming the tensor / field, and export ∘ import
 * giving back the original checkpoint bit for bit.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildModel, dslImportFor, modelParams, renderDsl } from "../../compiler/interop/arch-spec.js";
import { importHfConfigFromRaw } from "../../compiler/interop/hf.js";
import { importHf } from "../../compiler/interop/import.js";
import { exportHf, hfConfigFor } from "../../compiler/interop/export.js";
import { specFromModelDef } from "../../compiler/interop/megatron.js";
import { readSafetensors, readSafetensorsFile } from "../../compiler/io/safetensors.js";
import { isModelDef } from "../../compiler/dsl/model.js";
import transformer8b from "../../examples/transformer-8b.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";
import { SEED, llamaConfig, mamba2Config, mambaConfig, nemotronConfig, writeHfModel } from "./fixtures.js";

console.log(`interop tests: seed ${SEED} (STRATA_TEST_SEED to change)`);
const tmp = mkdtempSync(path.join(tmpdir(), "strata-interop-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CLASSES = { NemotronH: nemotronConfig, Mamba2: mamba2Config, Mamba: mambaConfig, Llama: llamaConfig } as Record<string, Record<string, any>>;

const cat = (...xs: Float32Array[]) => {
  const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of xs) (out.set(x, o), (o += x.length));
  return out;
};

/** What each Strata tensor must hold, written from the HF layouts (independent of the name maps). */
function expectedStrata(cls: string, cfg: Record<string, any>, hf: Map<string, Float32Array>, px: string): Map<string, Float32Array> {
  const e = new Map<string, Float32Array>();
  const g = (n: string) => {
    const v = hf.get(n);
    if (!v) throw new Error(`fixture lacks ${n}`);
    return v;
  };
  if (cls === "Llama") {
    e.set("embedding.weight", g(`${px}embed_tokens.weight`));
    for (let j = 0; j < cfg.num_hidden_layers; j++) {
      const L = `${px}layers.${j}.`;
      e.set(`layers.${2 * j}.norm.weight`, g(`${L}input_layernorm.weight`));
      e.set(`layers.${2 * j}.mixer.qkv.weight`, cat(g(`${L}self_attn.q_proj.weight`), g(`${L}self_attn.k_proj.weight`), g(`${L}self_attn.v_proj.weight`)));
      e.set(`layers.${2 * j}.mixer.o_proj.weight`, g(`${L}self_attn.o_proj.weight`));
      e.set(`layers.${2 * j + 1}.norm.weight`, g(`${L}post_attention_layernorm.weight`));
      e.set(`layers.${2 * j + 1}.mixer.fc1.weight`, cat(g(`${L}mlp.gate_proj.weight`), g(`${L}mlp.up_proj.weight`)));
      e.set(`layers.${2 * j + 1}.mixer.fc2.weight`, g(`${L}mlp.down_proj.weight`));
    }
    e.set("final_norm.weight", g(`${px}norm.weight`));
  } else {
    e.set("embedding.weight", g(`${px}embeddings.weight`));
    const pattern: string = cls === "NemotronH" ? cfg.hybrid_override_pattern : "M".repeat(cfg.num_hidden_layers);
    [...pattern].forEach((c, i) => {
      const L = `${px}layers.${i}.`, S = `layers.${i}.`;
      e.set(`${S}norm.weight`, g(`${L}norm.weight`));
      if (c === "*") {
        e.set(`${S}mixer.qkv.weight`, cat(g(`${L}mixer.q_proj.weight`), g(`${L}mixer.k_proj.weight`), g(`${L}mixer.v_proj.weight`)));
        e.set(`${S}mixer.o_proj.weight`, g(`${L}mixer.o_proj.weight`));
      } else if (c === "-") {
        e.set(`${S}mixer.fc1.weight`, g(`${L}mixer.up_proj.weight`));
        e.set(`${S}mixer.fc2.weight`, g(`${L}mixer.down_proj.weight`));
      } else {
        const names = cls === "Mamba" ? ["in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"] : ["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight", "out_proj.weight"];
        for (const n of names) e.set(`${S}mixer.${n}`, g(`${L}mixer.${n}`)); // conv1d [C,1,K] → [C,K]: same values in order
      }
    });
    e.set("final_norm.weight", g(`${px}norm_f.weight`));
  }
  if (!cfg.tie_word_embeddings) e.set("lm_head.weight", g("lm_head.weight"));
  return e;
}

describe("import-hf: generated DSL", () => {
  it.each(Object.entries(CLASSES))("%s: snapshot of the architecture file", async (name, cfg) => {
    const imp = importHfConfigFromRaw(cfg, `tiny-${name.toLowerCase()}/config.json`, `tiny-${name.toLowerCase()}`);
    const text = renderDsl(imp.spec, "../../compiler/dsl/index.js");
    await expect(text).toMatchFileSnapshot(`__snapshots__/${name}.arch.txt`);
  });

  it.each(Object.entries(CLASSES))("%s: the written file loads and declares exactly the spec's parameters", async (name, cfg) => {
    const imp = importHfConfigFromRaw(cfg, "x/config.json", `t-${name.toLowerCase()}`);
    const file = path.join(tmp, `load-${name}.ts`);
    writeFileSync(file, renderDsl(imp.spec, dslImportFor(file)));
    const mod = (await import(file)) as { default: unknown };
    expect(isModelDef(mod.default)).toBe(true);
    expect(modelParams(mod.default as ReturnType<typeof buildModel>)).toEqual(modelParams(buildModel(imp.spec)));
  });
});

describe("import-hf: weights", () => {
  const cases: [string, { shards?: boolean; prefix?: string }][] = [
    ["NemotronH", {}],
    ["NemotronH", { shards: true, prefix: "model." }],
    ["Mamba2", {}],
    ["Mamba", {}],
    ["Llama", { shards: true }],
  ];
  it.each(cases)("%s %o: every Strata tensor holds the right HF values and dtype", (name, o) => {
    const cfg = CLASSES[name]!;
    const dir = path.join(tmp, `${name}-${o.shards ? "sharded" : "single"}-${o.prefix ?? "default"}`);
    const hf = writeHfModel(dir, cfg, { ...o, seed: SEED + name.length });
    const r = importHf(dir, { out: path.join(dir, "arch.ts"), weightsOut: path.join(dir, "strata.safetensors"), name: "t" });
    const got = readSafetensorsFile(path.join(dir, "strata.safetensors"));
    const params = modelParams(buildModel(importHfConfigFromRaw(cfg, "x", "t").spec));
    expect([...got.tensors.keys()]).toEqual(params.map((p) => p.name)); // manifest order
    const want = expectedStrata(name, cfg, hf, o.prefix ?? (name === "Llama" ? "model." : "backbone."));
    expect(new Set(got.tensors.keys())).toEqual(new Set(want.keys()));
    for (const p of params) {
      const t = got.tensors.get(p.name)!;
      expect(t.dtype, p.name).toBe(p.dtype);
      expect(t.shape, p.name).toEqual(p.shape);
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(want.get(p.name)!.buffer)), p.name).toBe(true);
    }
    expect(r.tensors).toBe(params.length);
    expect(got.metadata.strata_model).toBe("t");
  });

  it("Mamba2 with n_groups > 1 says the gated norm is per group (unlike transformers' Mamba2 torch path)", () => {
    const imp = importHfConfigFromRaw(mamba2Config, "m/config.json", "m");
    expect(imp.notes.join("\n")).toMatch(/n_groups = 2: Strata's gated RMSNorm normalises each of the 2 groups separately.*transformers' Mamba2 torch path normalises over all of d_inner/);
    expect(imp.spec.header.join("\n")).toContain("per group");
    expect(importHfConfigFromRaw({ ...mamba2Config, n_groups: 1 }, "m", "m").notes.join()).not.toContain("n_groups");
  });
});

describe("import-hf: errors name what is wrong", () => {
  const dirFor = (tag: string, o: Parameters<typeof writeHfModel>[2]) => {
    const dir = path.join(tmp, `err-${tag}`);
    writeHfModel(dir, nemotronConfig, o);
    return dir;
  };
  const importErr = (dir: string) => {
    try {
      importHf(dir, { out: path.join(dir, "a.ts"), weightsOut: path.join(dir, "w.safetensors") });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error("import did not fail");
  };

  it("a missing tensor: its name and expected shape; nothing is written", () => {
    const dir = dirFor("missing", { drop: ["backbone.layers.1.mixer.k_proj.weight"] });
    const msg = importErr(dir);
    expect(msg).toContain("missing tensor 'backbone.layers.1.mixer.k_proj.weight': expected shape [32, 128]");
    expect(existsSync(path.join(dir, "a.ts"))).toBe(false);
    expect(existsSync(path.join(dir, "w.safetensors"))).toBe(false);
  });
  it("a mis-shaped tensor: expected and found", () => {
    const msg = importErr(dirFor("shape", { reshape: { "backbone.layers.0.mixer.conv1d.weight": [768, 4] } }));
    expect(msg).toContain("tensor 'backbone.layers.0.mixer.conv1d.weight' has shape [768, 4], expected [768, 1, 4]");
  });
  it("an extra tensor: named", () => {
    const msg = importErr(dirFor("extra", { extra: [{ name: "backbone.layers.2.mixer.gate_proj.weight", shape: [320, 128] }] }));
    expect(msg).toContain("extra tensor 'backbone.layers.2.mixer.gate_proj.weight' [320, 128]: nothing in the model uses it");
  });
  it("all problems at once, with a count", () => {
    const msg = importErr(dirFor("many", { drop: ["lm_head.weight", "backbone.norm_f.weight"] }));
    expect(msg).toMatch(/2 problems/);
    expect(msg).toContain("missing tensor 'lm_head.weight'");
    expect(msg).toContain("missing tensor 'backbone.norm_f.weight'");
  });

  const configErr = (cfg: Record<string, unknown>) => {
    try {
      importHfConfigFromRaw(cfg, "m/config.json", "m");
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error("config import did not fail");
  };
  it.each([
    ["an unsupported class", { ...llamaConfig, architectures: ["GPT2LMHeadModel"] }, /class 'GPT2LMHeadModel' is not supported.*\n.*supported: NemotronHForCausalLM, Mamba2ForCausalLM, MambaForCausalLM, LlamaForCausalLM/],
    ["rope scaling", { ...llamaConfig, rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling = .*llama3.*rope scaling 'llama3' is not supported/],
    ["rope_parameters scaling (transformers 5)", { ...llamaConfig, rope_parameters: { rope_type: "yarn", rope_theta: 1e4 } }, /rope_parameters = .*rope_type 'yarn' is not supported/],
    ["attention biases", { ...llamaConfig, attention_bias: true }, /attention_bias = true: attention biases are not supported/],
    ["a mixture-of-experts block", { ...nemotronConfig, hybrid_override_pattern: "M*E-", num_hidden_layers: 4 }, /layer 2 is a mixture-of-experts block/],
    ["a tanh-approximated GeLU MLP", { ...nemotronConfig, mlp_hidden_act: "gelu_pytorch_tanh" }, /mlp_hidden_act = "gelu_pytorch_tanh": activation 'gelu_pytorch_tanh' is not supported/],
    ["a dt clamp", { ...mamba2Config, time_step_limit: [0.001, 0.1] }, /time_step_limit = \[0.001,0.1\]: a clamp on dt is not supported/],
    ["inconsistent Mamba-2 heads", { ...mamba2Config, num_heads: 6 }, /num_heads = 6: num_heads·head_dim = 6·64 = 384 but d_inner = expand·hidden_size = 512/],
    ["a missing field", { ...llamaConfig, hidden_size: undefined }, /missing field 'hidden_size'/],
  ])("%s", (_what, cfg, re) => {
    expect(configErr(cfg as Record<string, unknown>)).toMatch(re);
  });

  it("config.json as Python writes it (bare Infinity in time_step_limit) reads; a real clamp is refused", () => {
    const dir = path.join(tmp, "py-json");
    writeHfModel(dir, mamba2Config);
    const text = JSON.stringify({ ...mamba2Config, time_step_limit: [0, 1] }, null, 2).replace(/\[\s*0,\s*1\s*\]/, "[0.0, Infinity]");
    expect(text).toContain("Infinity]");
    writeFileSync(path.join(dir, "config.json"), text);
    expect(importHf(dir, { out: path.join(dir, "a.ts") }).cls).toBe("Mamba2ForCausalLM");
    writeFileSync(path.join(dir, "config.json"), text.replace("[0.0, Infinity]", "[0.0, 0.1]"));
    expect(() => importHf(dir, { out: path.join(dir, "a.ts") })).toThrow(/time_step_limit = \[0,0\.1\]: a clamp on dt is not supported/);
  });

  it("layers_block_type (transformers 5 names) gives the same pattern as hybrid_override_pattern", () => {
    const { hybrid_override_pattern: _p, ...rest } = nemotronConfig;
    const names = { M: "linear_attention", "*": "full_attention", "-": "mlp" } as Record<string, string>;
    const spec = importHfConfigFromRaw({ ...rest, layers_block_type: [..._p].map((c) => names[c]) }, "x", "x").spec;
    expect(spec.pattern).toBe(_p);
  });
});

describe("export-hf", () => {
  it.each(Object.entries(CLASSES))("%s: export ∘ import gives back the checkpoint's tensors bit for bit", (name, cfg) => {
    const dir = path.join(tmp, `rt-${name}`);
    const hf = writeHfModel(dir, cfg, { seed: SEED + 99 });
    importHf(dir, { out: path.join(dir, "arch.ts"), weightsOut: path.join(dir, "strata.safetensors"), name: "rt" });
    const def = buildModel(importHfConfigFromRaw(cfg, "x", "rt").spec);
    const r = exportHf(def, path.join(dir, "strata.safetensors"), path.join(dir, "exported"));
    const back = readSafetensors(path.join(dir, "exported", "model.safetensors"));
    expect(new Set(back.keys())).toEqual(new Set(hf.keys()));
    for (const [k, v] of hf) expect(Buffer.from(back.get(k)!.data.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
    // and the config imports to the same architecture
    const again = importHfConfigFromRaw(r.config, "exported/config.json", "rt").spec;
    expect(modelParams(buildModel(again))).toEqual(modelParams(def));
    expect(r.cls).toBe(name === "Mamba2" ? "NemotronHForCausalLM" : `${name === "NemotronH" ? "NemotronH" : name}ForCausalLM`);
  });

  it("a one-group Mamba-2 model exports as Mamba2ForCausalLM", () => {
    const spec = importHfConfigFromRaw({ ...mamba2Config, n_groups: 1 }, "x", "m").spec;
    expect(hfConfigFor(spec).cls).toBe("Mamba2ForCausalLM");
  });

  it("the 8B Mamba-2-Hybrid fits NemotronH with the GeLU MLP; the 8B Transformer names what does not fit", () => {
    const h = hfConfigFor(specFromModelDef(hybrid8b));
    expect(h.cls).toBe("NemotronHForCausalLM");
    expect(h.config).toMatchObject({ mlp_hidden_act: "gelu", hybrid_override_pattern: hybrid8b.pattern, n_groups: 8, mamba_num_heads: 128, num_key_value_heads: 8 });
    expect(() => hfConfigFor(specFromModelDef(transformer8b))).toThrow(/does not fit NemotronHForCausalLM:\n  - norm "layernorm1p"[^]*attention with RoPE/);
  });
});
