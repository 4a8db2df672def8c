/**
 * The import commands' work, separate from the CLI: write the architecture file for an
 * `ArchSpec`, and map a checkpoint's tensors onto the model's parameters (checked by name and
 * shape first, then streamed into one Strata-named safetensors file).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildModel, dslImportFor, modelParams, renderDsl, type ArchSpec } from "./arch-spec.js";
import { importHfConfig, rulesFor, type WeightMapper } from "./hf.js";
import { checkRules, openSafetensors, throwProblems, writeMapped, type TensorSource } from "./tensor-io.js";

export interface ImportResult {
  cls: string;
  archFile?: string;
  weightsFile?: string;
  dsl: string;
  notes: string[];
  params: number;
  tensors: number;
}

/** Write `spec` as a DSL file at `out` (after checking that the DSL accepts it). */
export function writeArch(spec: ArchSpec, out: string): string {
  buildModel(spec).toGraph(); // the same calls the file makes: fail here, not when the user loads it
  const text = renderDsl(spec, dslImportFor(out));
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, text);
  return text;
}

/** The rules mapping `src` onto `spec`'s parameters; throws listing every problem by tensor name. */
export function checkedRules(spec: ArchSpec, mapper: WeightMapper, src: TensorSource, what: string) {
  const params = modelParams(buildModel(spec));
  const { rules, expected } = rulesFor(params, mapper, src);
  throwProblems(`${what}: the tensors in ${src.describe} do not match the architecture`, checkRules(rules, src, { expected, ignore: mapper.ignore }), "names are the checkpoint's; expected shapes follow from its config");
  return { params, rules };
}

/** Map `src` onto `spec`'s parameters and write Strata's weights file. */
export function writeWeights(spec: ArchSpec, mapper: WeightMapper, src: TensorSource, out: string, what: string, metadata: Record<string, string> = {}): { params: number; tensors: number } {
  const { params, rules } = checkedRules(spec, mapper, src, what);
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeMapped(out, rules, src, { format: "pt", strata_model: spec.name, ...metadata });
  return { params: params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0), tensors: rules.length };
}

export function importHf(input: string, o: { out?: string; weightsOut?: string; name?: string }): ImportResult {
  const imp = importHfConfig(input, { name: o.name });
  const out = o.out ?? `${imp.spec.name}.ts`;
  const what = `import-hf ${imp.cls}`;
  const src = o.weightsOut ? openSafetensors(imp.dir) : undefined;
  try {
    if (src) checkedRules(imp.spec, imp.mapper, src, what); // nothing is written when the weights do not fit
    const dsl = writeArch(imp.spec, out);
    const stats = src ? writeWeights(imp.spec, imp.mapper, src, o.weightsOut!, what, { source: imp.cls }) : { params: 0, tensors: 0 };
    return { cls: imp.cls, archFile: out, weightsFile: o.weightsOut, dsl, notes: imp.notes, ...stats };
  } finally {
    src?.close();
  }
}
