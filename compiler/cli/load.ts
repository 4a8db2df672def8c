/**
 * Loading a user's architecture file: type-check it with ts-morph (diagnostics as file:line:col),
 * then import it (tsx compiles TypeScript on import; files that import each other just work) and
 * take its default export (or export `model`) as the ModelDef.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Diagnostic } from "ts-morph";
import { StrataError } from "../ir/errors.js";
import { isModelDef, type ModelDef } from "../dsl/model.js";

export interface TsDiagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
  category: "error" | "warning";
}

/** Strata's own sources: already checked by its CI, so only the user's files are reported. */
const STRATA_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STRATA_SOURCES = [path.join(STRATA_ROOT, "compiler") + path.sep, path.join(STRATA_ROOT, "node_modules") + path.sep];

function resolveArch(file: string): string {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new StrataError(`architecture file not found: ${file}`, undefined, "pass a path to a .ts file that default-exports model({...}), e.g. examples/tiny-hybrid.ts");
  if (!statSync(abs).isFile()) throw new StrataError(`not a file: ${file}`);
  if (!/\.[cm]?tsx?$|\.[cm]?js$/.test(abs)) throw new StrataError(`architecture file must be TypeScript or JavaScript: ${file}`);
  return abs;
}

/** Type-check `file` and the user files it imports (strict mode); Strata's own sources are trusted. */
export async function typecheck(file: string): Promise<TsDiagnostic[]> {
  const abs = resolveArch(file);
  // loaded on demand: ts-morph (and TypeScript) take about a second to import
  const { Project, ts } = await import("ts-morph");
  const project = new Project({
    compilerOptions: {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      skipLibCheck: true,
      noEmit: true,
      typeRoots: [path.join(STRATA_ROOT, "node_modules/@types")],
      types: ["node"],
    },
    skipAddingFilesFromTsConfig: true,
  });
  project.addSourceFileAtPath(abs);
  project.resolveSourceFileDependencies();
  const userFiles = project.getSourceFiles().filter((sf) => !STRATA_SOURCES.some((p) => sf.getFilePath().startsWith(p)));
  const diags: Diagnostic[] = userFiles.flatMap((sf) => sf.getPreEmitDiagnostics());
  const out: TsDiagnostic[] = [];
  for (const d of diags) {
    const sf = d.getSourceFile();
    const fp = sf?.getFilePath() ?? abs;
    const start = d.getStart();
    const lc = sf && start !== undefined ? sf.getLineAndColumnAtPos(start) : { line: 1, column: 1 };
    const text = d.getMessageText();
    const message = typeof text === "string" ? text : ts.flattenDiagnosticMessageText(text.compilerObject, "\n");
    out.push({
      file: path.relative(process.cwd(), fp) || fp,
      line: lc.line,
      col: lc.column,
      message,
      category: d.getCategory() === ts.DiagnosticCategory.Error ? "error" : "warning",
    });
  }
  return out;
}

export function formatDiagnostics(ds: readonly TsDiagnostic[]): string {
  return ds.map((d) => `${d.file}:${d.line}:${d.col} - ${d.category}: ${d.message}`).join("\n");
}

/** Type-check (unless `check` is false), import, and return the model the file exports. */
export async function loadModel(file: string, opts: { check?: boolean } = {}): Promise<ModelDef> {
  const abs = resolveArch(file);
  if (opts.check !== false) {
    const errors = (await typecheck(abs)).filter((d) => d.category === "error");
    if (errors.length) throw new StrataError(`${file} has ${errors.length} TypeScript error${errors.length > 1 ? "s" : ""}:\n${formatDiagnostics(errors)}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof StrataError) throw e;
    const err = e as Error;
    const frame = err.stack?.split("\n").find((l) => l.includes(abs));
    throw new StrataError(`failed to load ${file}: ${err.message}${frame ? `\n  at ${frame.trim()}` : ""}`);
  }
  const m = mod.default ?? mod.model;
  if (!isModelDef(m))
    throw new StrataError(`${file} does not export a model`, undefined, "end the file with `export default model({ name, vocab, dModel, layers })`");
  return m;
}
