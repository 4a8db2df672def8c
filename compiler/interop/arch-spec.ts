/**
 * An imported architecture as plain data (`ArchSpec`): what a checkpoint's config says, in the
 * DSL's own terms. One spec gives both the readable architecture file (`renderDsl`, the file
 * `strata import-hf` / `import-megatron` write) and the same model built in memory
 * (`buildModel`, whose parameter table the weight mapping is checked against), so the file and
 * the weights cannot disagree.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { attention, mamba, mamba2, mlp, model, stack, type ModelDef } from "../dsl/index.js";
import type { AttentionOptions, Mamba2Options, MambaOptions, MlpOptions } from "../dsl/layers.js";
import type { NormKind } from "../dsl/model.js";
import { graphParams } from "../ir/graph.js";

export type LayerSpec =
  | { kind: "mamba2"; opts: Mamba2Options }
  | { kind: "mamba"; opts: MambaOptions }
  | { kind: "attention"; opts: AttentionOptions }
  | { kind: "mlp"; opts: MlpOptions };

export interface ArchSpec {
  name: string;
  vocab: number;
  dModel: number;
  norm: NormKind;
  normEps: number;
  tiedEmbeddings: boolean;
  seqLen?: number;
  /** Megatron's scaled init counts a transformer layer (attention + MLP) once. */
  initLayers?: number;
  /** One symbol per layer. */
  pattern: string;
  symbols: Record<string, LayerSpec>;
  /** Lines of the file's header comment (where the spec came from, notes on semantics). */
  header: string[];
}

export const STRATA_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Build the spec's model with the DSL (the same calls the rendered file makes). */
export function buildModel(spec: ArchSpec): ModelDef {
  const symbols: Record<string, ReturnType<typeof mlp>> = {};
  for (const [sym, l] of Object.entries(spec.symbols)) {
    symbols[sym] =
      l.kind === "mamba2" ? mamba2(l.opts)
      : l.kind === "mamba" ? mamba(l.opts)
      : l.kind === "attention" ? attention(l.opts)
      : mlp(l.opts);
  }
  return model({
    name: spec.name,
    vocab: spec.vocab,
    dModel: spec.dModel,
    norm: spec.norm,
    normEps: spec.normEps,
    tiedEmbeddings: spec.tiedEmbeddings,
    ...(spec.seqLen !== undefined ? { seqLen: spec.seqLen } : {}),
    ...(spec.initLayers !== undefined ? { initLayers: spec.initLayers } : {}),
    layers: stack({ pattern: spec.pattern, ...symbols }),
  });
}

export interface ParamInfo {
  name: string;
  /** safetensors dtype of the parameter in a Strata weights file. */
  dtype: "BF16" | "F16" | "F32";
  shape: number[];
}

/** The parameters a compiled model expects, in graph order (the manifest's weights table). */
export function modelParams(def: ModelDef): ParamInfo[] {
  const st = { bf16: "BF16", f16: "F16", f32: "F32" } as const;
  return graphParams(def.toGraph()).map((n) => {
    const dtype = st[n.dtype as keyof typeof st];
    if (!dtype) throw new Error(`parameter ${String(n.attrs.name)} has dtype ${n.dtype}`);
    return { name: String(n.attrs.name), dtype, shape: n.shape.map(Number) };
  });
}

// ---- rendering ------------------------------------------------------------------------------

/** A JS literal for a plain value (numbers as written by JS, strings double-quoted). */
function lit(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v);
  if (typeof v === "boolean") return String(v);
  if (v && typeof v === "object") {
    const parts = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${lit(x)}`);
    return parts.length ? `{ ${parts.join(", ")} }` : "{}";
  }
  throw new Error(`cannot render ${String(v)}`);
}

/** Import specifier of Strata's DSL as seen from a file written to `outFile` (posix separators). */
export function dslImportFor(outFile: string): string {
  let rel = path.relative(path.dirname(path.resolve(outFile)), path.join(STRATA_ROOT, "compiler/dsl/index.js")).split(path.sep).join("/");
  if (!rel.startsWith(".")) rel = `./${rel}`;
  return rel;
}

/** The architecture file for `spec`, importing the DSL from `dslImport`. */
export function renderDsl(spec: ArchSpec, dslImport: string): string {
  const kinds = [...new Set(Object.values(spec.symbols).map((l) => l.kind))];
  const imports = [...kinds, "model", "stack"].sort();
  const out: string[] = [];
  out.push("/**");
  for (const l of spec.header) out.push(l ? ` * ${l}` : " *");
  out.push(" */");
  out.push(`import { ${imports.join(", ")} } from ${JSON.stringify(dslImport)};`);
  out.push("");
  out.push("export default model({");
  out.push(`  name: ${lit(spec.name)},`);
  out.push(`  vocab: ${spec.vocab},`);
  out.push(`  dModel: ${spec.dModel},`);
  out.push(`  norm: ${lit(spec.norm)},`);
  out.push(`  normEps: ${lit(spec.normEps)},`);
  out.push(`  tiedEmbeddings: ${spec.tiedEmbeddings},`);
  if (spec.seqLen !== undefined) out.push(`  seqLen: ${spec.seqLen},`);
  if (spec.initLayers !== undefined) out.push(`  initLayers: ${spec.initLayers},`);
  out.push("  layers: stack({");
  // long patterns wrap at 64 symbols per line, as string concatenation
  const chunks = spec.pattern.match(/.{1,64}/g) ?? [];
  if (chunks.length <= 1) out.push(`    pattern: ${lit(spec.pattern)},`);
  else {
    out.push("    pattern:");
    chunks.forEach((c, i) => out.push(`      ${lit(c)}${i < chunks.length - 1 ? " +" : ","}`));
  }
  for (const [sym, l] of Object.entries(spec.symbols)) out.push(`    ${/^[A-Za-z_$][\w$]*$/.test(sym) ? sym : JSON.stringify(sym)}: ${l.kind}(${lit(l.opts)}),`);
  out.push("  }),");
  out.push("});");
  return out.join("\n") + "\n";
}
