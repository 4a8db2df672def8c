/**
 * Loading a user's architecture file: type-check it with ts-morph (diagnostics as file:line:col),
 * then import it (tsx compiles TypeScript on import; files that import each other just work) and
 * take its default export (or export `model`) as the ModelDef.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Diagnostic } from "ts-morph";
import { StrataError } from "../ir/errors.js";
import { isModelDef, type ModelDef } from "../dsl/model.js";
import { defaultCacheDir } from "../nvcc/driver.js";

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

/** Strata's sources and dependency lock, hashed once per process: a user file's types depend on them. */
let strataPrint: string | undefined;
function strataFingerprint(): string {
  if (strataPrint) return strataPrint;
  const h = createHash("sha256");
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.[cm]?ts$/.test(e.name)) h.update(f).update("\0").update(readFileSync(f)).update("\0");
    }
  };
  walk(path.join(STRATA_ROOT, "compiler"));
  for (const f of ["package.json", "package-lock.json"]) if (existsSync(path.join(STRATA_ROOT, f))) h.update(readFileSync(path.join(STRATA_ROOT, f)));
  return (strataPrint = h.digest("hex"));
}

/** The TypeScript file an import specifier of `from` names (./x.js → ./x.ts as tsx resolves it), or undefined. */
function resolveUserImport(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  const stem = base.replace(/\.[cm]?js$/, "");
  for (const c of [base, `${stem}.ts`, `${stem}.mts`, `${stem}.cts`, `${stem}.tsx`, path.join(base, "index.ts")])
    if (existsSync(c) && statSync(c).isFile()) return c;
  return undefined;
}

/**
 * The content key of a type check of `abs`: the architecture file and every user file it imports
 * (relative imports, followed), their paths and contents, and Strata's own sources. Undefined —
 * check every time — when an import cannot be followed: a bare package other than Node's
 * (`node:`) or Strata's, whose types this key would not see, or an unresolvable path.
 */
export function checkKey(abs: string): string | undefined {
  const files = new Map<string, string>();
  const queue = [abs];
  while (queue.length) {
    const f = queue.pop()!;
    if (files.has(f)) continue;
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      return undefined;
    }
    files.set(f, text);
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (spec.startsWith("node:") || spec === "strata-compiler" || spec.startsWith("strata-compiler/")) continue;
      if (!spec.startsWith(".") && !path.isAbsolute(spec)) return undefined;
      const r = resolveUserImport(f, spec);
      if (!r) return undefined;
      if (!STRATA_SOURCES.some((p) => r.startsWith(p))) queue.push(r);
    }
  }
  const h = createHash("sha256").update(strataFingerprint());
  for (const [f, text] of [...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(f).update("\0").update(text).update("\0");
  return h.digest("hex");
}

/**
 * Type-check `file` and the user files it imports (strict mode); Strata's own sources are trusted.
 * A check that found nothing is remembered by content (a stamp under the nvcc cache directory,
 * `typecheck/<key>`), so recompiling unchanged files skips it (`STRATA_CHECK_CACHE=0`: always check).
 * Diagnostics are never cached: a file with errors or warnings is checked again every time.
 */
export async function typecheck(file: string): Promise<TsDiagnostic[]> {
  const abs = resolveArch(file);
  const key = process.env.STRATA_CHECK_CACHE === "0" ? undefined : checkKey(abs);
  const stamp = key ? path.join(defaultCacheDir(), "typecheck", key) : undefined;
  if (stamp && existsSync(stamp)) return [];
  const out = await typecheckNow(abs);
  if (stamp && out.length === 0) {
    try {
      mkdirSync(path.dirname(stamp), { recursive: true });
      writeFileSync(stamp, `${abs}\n`);
    } catch {
      // an unwritable cache only costs the next check
    }
  }
  return out;
}

async function typecheckNow(abs: string): Promise<TsDiagnostic[]> {
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
  const seconds = loadTimeLimit();
  return withTimeLimit(seconds, `${file}: loading the architecture file and building its model did not finish within ${seconds} s (an endless loop at top level or in a layer's build function?)`, "hint: set STRATA_LOAD_TIMEOUT=SECONDS to allow more time", async () => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (e) {
      throw loadError(e, file);
    }
    const m = mod.default ?? mod.model;
    if (!isModelDef(m))
      throw new StrataError(`${file} does not export a model`, undefined, "end the file with `export default model({ name, vocab, dModel, layers })`");
    m.toGraph(); // lowering runs the layers' build functions: inside the time limit (the graph is memoised)
    return m;
  });
}

/** A user file that threw while loading: the error at its own file:line when a frame names a user file. */
function loadError(e: unknown, file: string): StrataError {
  if (e instanceof StrataError) return e;
  const err = e as Error & { code?: string };
  const message = String(err?.message ?? e);
  if (err?.code === "ERR_MODULE_NOT_FOUND" || err?.code === "MODULE_NOT_FOUND") {
    const first = message.split("\n")[0]!;
    return new StrataError(`failed to load ${file}: ${first}`, undefined, "check the import path: it is relative to the importing file, and TypeScript files are imported as ./name.js or ./name.ts");
  }
  // the first stack frame in a user file (not Strata's compiler, not node_modules, not node: internals)
  for (const l of (err?.stack ?? "").split("\n")) {
    const m = /^\s+at (?:.*? \()?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?$/.exec(l);
    if (!m) continue;
    let f = m[1]!;
    if (f.startsWith("file://")) f = fileURLToPath(f);
    if (f.startsWith("node:") || STRATA_SOURCES.some((p) => f.startsWith(p))) continue;
    const rel = path.relative(process.cwd(), f);
    return new StrataError(`loading threw: ${message}`, { file: rel && !rel.startsWith("..") ? rel : f, line: Number(m[2]), col: Number(m[3]) });
  }
  return new StrataError(`failed to load ${file}: ${message}`);
}

/** Seconds allowed for importing an architecture file and lowering its model (STRATA_LOAD_TIMEOUT, default 60). */
export function loadTimeLimit(): number {
  const v = process.env.STRATA_LOAD_TIMEOUT;
  if (v === undefined || v === "") return 60;
  const n = Number(v);
  if (!(n > 0 && Number.isFinite(n))) throw new StrataError(`STRATA_LOAD_TIMEOUT='${v}' is not a positive number of seconds`, undefined, "e.g. STRATA_LOAD_TIMEOUT=120");
  return n;
}

/**
 * Run `fn` (which may block the event loop, e.g. a user's `while (true) {}`) under a time limit.
 * A timer cannot fire while the main thread is busy, so a watchdog worker thread does: past the
 * limit it prints `error: <what>` and stops the main thread's JavaScript through the inspector
 * protocol (Runtime.terminateExecution); the process then exits with status 1.
 */
export async function withTimeLimit<T>(seconds: number, what: string, hint: string, fn: () => Promise<T>): Promise<T> {
  const code = `
    const fs = require("node:fs");
    const { workerData } = require("node:worker_threads");
    setTimeout(() => {
      fs.writeSync(2, "error: " + workerData.what + "\\n  " + workerData.hint + "\\n");
      try {
        const { Session } = require("node:inspector");
        const s = new Session();
        s.connectToMainThread();
        s.post("Runtime.terminateExecution", () => {});
      } catch {
        process.kill(process.pid, "SIGKILL");
      }
    }, workerData.ms);`;
  const { Worker } = await import("node:worker_threads");
  const watchdog = new Worker(code, { eval: true, workerData: { what, hint, ms: Math.round(seconds * 1000) } });
  watchdog.unref();
  const before = process.exitCode;
  process.exitCode = 1; // the status if the watchdog stops us
  try {
    return await fn();
  } finally {
    process.exitCode = before;
    await watchdog.terminate();
  }
}
