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

/** Map `src` onto `spec`'s parameters and write Strata's weights file. */
export function writeWeights(spec: ArchSpec, mapper: WeightMapper, src: TensorSource, out: string, what: string, metadata: Record<string, string> = {}): { params: number; tensors: number } {
  const params = modelParams(buildModel(spec));
  const { rules, expected } = rulesFor(params, mapper, src);
  throwProblems(`${what}: the tensors in ${src.describe} do not match the architecture`, checkRules(rules, src, { expected, ignore: mapper.ignore }), "names are the checkpoint's; expected shapes follow from its config");
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeMapped(out, rules, src, { format: "pt", strata_model: spec.name, ...metadata });
  return { params: params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0), tensors: rules.length };
}

export function importHf(input: string, o: { out?: string; weightsOut?: string; name?: string }): ImportResult {
  const imp = importHfConfig(input, { name: o.name });
  const out = o.out ?? `${imp.spec.name}.ts`;
  const dsl = writeArch(imp.spec, out);
  let stats = { params: 0, tensors: 0 };
  if (o.weightsOut) {
    const src = openSafetensors(imp.dir);
    try {
      stats = writeWeights(imp.spec, imp.mapper, src, o.weightsOut, `import-hf ${imp.cls}`, { source: imp.cls });
    } finally {
      src.close();
    }
  }
  return { cls: imp.cls, archFile: out, weightsFile: o.weightsOut, dsl, notes: imp.notes, ...stats };
}
