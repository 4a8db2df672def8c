/**
 * nvcc driver: builds rendered .cu units into object files, in parallel, with a content cache,
 * and reports ptxas resource usage (registers, smem, spills) per kernel.
 *
 * Cache key = sha256 over, length-delimited (JSON):
 *   - CACHE_VERSION (bump when this driver's output or report format changes),
 *   - the nvcc version string ("13.0.88": a different toolkit emits different SASS),
 *   - the target arch and the full code-generation flag list (-O3, -lineinfo, -maxrregcount, ...),
 *   - the unit's source text,
 *   - every header reachable from it via #include within includeDirs, recursively: include spec
 *     as written + sha256 of contents (see includes.ts).
 * Why: an object depends on exactly these inputs, so the key changes whenever the output could,
 * while deliberately excluding things that don't affect the output: absolute checkout paths
 * (-I directories, the .cu location, outDir), so a fresh CI clone in another directory still
 * hits a cache kept in $HOME. Toolkit headers are covered by the nvcc version. (Consequence: the
 * -lineinfo file names inside a cached object are those of the run that first built it.)
 * Entries are `<key>.o` then `<key>.json` (report), each written to a temp file in the cache
 * dir and renamed into place; the .json is the commit marker, so a killed or concurrent run can
 * leave at worst a stray temp file, never a half-written entry that is read back.
 */
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants as fsc, statSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { execa, execaSync } from "execa";
import { StrataError, type SourceLoc } from "../ir/errors.js";
import { collectHeaders, type HeaderDep } from "./includes.js";
import { extractWarnings, parseDiagnostics, parsePtxasOutput, toFileColonLine, type PtxasReport } from "./ptxas.js";

export type { PtxasReport } from "./ptxas.js";
export { parsePtxasOutput, parseDiagnostics, extractWarnings } from "./ptxas.js";
export { collectHeaders, type HeaderDep } from "./includes.js";

/** Bump whenever the object layout, the flags semantics or the stored report format changes. */
export const CACHE_VERSION = 1;

export type NvccArch = "sm_90a" | "sm_80" | "sm_90";

/** Default flags (no --use_fast_math: numerics must match the reference interpreter). */
export const DEFAULT_FLAGS: readonly string[] = ["-std=c++17", "-O3", "-Xptxas", "-v", "-lineinfo"];

export interface CompileUnit {
  /** Kernel name; also the object file name (`<outDir>/<name>.o`). */
  name: string;
  /** Template file the source was rendered from, for error messages. */
  template: string;
  /** Full .cu text. */
  source: string;
  /** Where the .cu is written before compiling (so nvcc errors point at a readable file); default `<outDir>/<name>.cu`. */
  file?: string;
}

export interface CompileOptions {
  /** Default "sm_90a". */
  arch?: NvccArch;
  includeDirs: string[];
  /** Replaces DEFAULT_FLAGS. `-Xptxas -v` is added if missing (the report depends on it). */
  flags?: string[];
  /** Appended after flags (e.g. ["-maxrregcount", "128"]). */
  extraFlags?: string[];
  outDir: string;
  /** Default: $STRATA_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/strata/nvcc. */
  cacheDir?: string;
  /** Skip cache lookup and store. */
  noCache?: boolean;
  /** nvcc binary; default findNvcc(). */
  nvcc?: string;
  /** Kill nvcc after this many ms (default: no limit). */
  timeoutMs?: number;
}

export interface CompileResult {
  ok: true;
  name: string;
  objPath: string;
  /** The .cu that was written and compiled. */
  sourcePath: string;
  cached: boolean;
  /** Wall time of this call (cache hits: the lookup + copy). */
  seconds: number;
  /** Wall time of the nvcc run that produced the object (stored with the cache entry). */
  compileSeconds: number;
  key: string;
  ptxas: PtxasReport[];
  warnings: string[];
}

export interface NvccFailure {
  ok: false;
  name: string;
  template: string;
  sourcePath: string;
  exitCode?: number;
  timedOut: boolean;
  /** First diagnostic's location in the .cu, when nvcc printed one. */
  loc?: SourceLoc;
  /** First ~20 lines of nvcc's output, "file:line: error: ..." form. */
  excerpt: string;
  /** nvcc's full stderr. */
  stderr: string;
}

const EXCERPT_LINES = 20;

export class NvccError extends StrataError {
  constructor(readonly failures: NvccFailure[]) {
    const n = failures.length;
    const body = failures
      .map((f) => {
        const head = `kernel ${f.name} (template ${f.template}), source ${f.sourcePath}` +
          (f.timedOut ? " — nvcc timed out" : f.exitCode !== undefined ? ` — nvcc exit ${f.exitCode}` : "");
        return `  - ${head}\n${f.excerpt.split("\n").map((l) => (l.trim() ? `      ${l}` : "")).join("\n")}`;
      })
      .join("\n");
    super(
      `nvcc failed for ${n} kernel${n === 1 ? "" : "s"} (${failures.map((f) => f.name).join(", ")}):\n${body}`,
      failures[0]?.loc,
      `line numbers refer to the generated .cu files above; an error there usually means template ` +
        `${[...new Set(failures.map((f) => f.template))].join(", ")} rendered invalid CUDA for this configuration — ` +
        `fix the template (or the shapes feeding it) and rerun; use --emit-only to write the sources without building`,
    );
    this.name = "NvccError";
  }
}

// ---------------------------------------------------------------------------------------------
// Locating nvcc

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Directories findNvcc searches, in order: $PATH, $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin. */
export function nvccSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  if (env.CUDA_HOME) dirs.push(join(env.CUDA_HOME, "bin"));
  if (env.CUDA_PATH) dirs.push(join(env.CUDA_PATH, "bin"));
  dirs.push("/usr/local/cuda/bin");
  return [...new Set(dirs)];
}

/** Absolute path of nvcc, or undefined. */
export function findNvcc(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const d of nvccSearchDirs(env)) {
    const p = join(d, process.platform === "win32" ? "nvcc.exe" : "nvcc");
    if (isExecutable(p)) return resolve(p);
  }
  return undefined;
}

export function nvccNotFoundError(env: NodeJS.ProcessEnv = process.env): StrataError {
  const looked = nvccSearchDirs(env);
  if (!env.CUDA_HOME) looked.splice(looked.length - 1, 0, "$CUDA_HOME/bin (unset)");
  return new StrataError(
    `nvcc not found on PATH (looked in ${looked.join(", ")}); install the CUDA toolkit or use --emit-only to write the sources without building`,
    undefined,
    "set CUDA_HOME to the toolkit root or put its bin/ directory on PATH",
  );
}

const versionMemo = new Map<string, string>();

/** Parse "Cuda compilation tools, release 13.0, V13.0.88" → "13.0.88". */
export function parseNvccVersion(text: string): string | undefined {
  const m = text.match(/\bV(\d+\.\d+\.\d+)\b/) ?? text.match(/release (\d+\.\d+)/);
  return m?.[1];
}

/** nvcc's full version ("13.0.88"), memoised per binary; undefined if nvcc is missing. */
export function nvccVersion(nvcc: string | undefined = findNvcc()): string | undefined {
  if (!nvcc) return undefined;
  const hit = versionMemo.get(nvcc);
  if (hit) return hit;
  const r = execaSync(nvcc, ["--version"], { reject: false });
  const v = r.exitCode === 0 ? parseNvccVersion(String(r.stdout)) : undefined;
  if (v) versionMemo.set(nvcc, v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Flags, keys, cache

export function archFlags(arch: NvccArch = "sm_90a"): string[] {
  const n = arch.slice(3); // "90a"
  return ["-gencode", `arch=compute_${n},code=sm_${n}`];
}

/** The code-generation flags (everything except -I, the input and -o), as they go into the key. */
export function codegenFlags(opts: Pick<CompileOptions, "arch" | "flags" | "extraFlags">): string[] {
  const flags = [...(opts.flags ?? DEFAULT_FLAGS)];
  const hasVerbose = flags.some((f, i) => (f === "-Xptxas" && /(^|,)(-v|--verbose)(,|$)/.test(flags[i + 1] ?? "")) ||
    /^(-Xptxas=|--ptxas-options=).*(-v|--verbose)/.test(f) || f === "--resource-usage" || f === "-res-usage");
  if (!hasVerbose) flags.push("-Xptxas", "-v");
  return [...archFlags(opts.arch ?? "sm_90a"), ...flags, ...(opts.extraFlags ?? [])];
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_CACHE_DIR) return resolve(env.STRATA_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || join(os.homedir(), ".cache");
  return join(base, "strata", "nvcc");
}

export function cacheKey(parts: { source: string; headers: HeaderDep[]; nvccVersion: string; flags: string[] }): string {
  const payload = JSON.stringify({
    v: CACHE_VERSION,
    nvcc: parts.nvccVersion,
    flags: parts.flags,
    headers: parts.headers.map((h) => [h.spec, h.sha256 ?? null]),
    source: parts.source,
  });
  return createHash("sha256").update(payload).digest("hex");
}

function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
}

async function atomicWrite(path: string, data: string | Buffer): Promise<void> {
  const tmp = tmpName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function atomicCopy(from: string, to: string): Promise<void> {
  const tmp = tmpName(to);
  try {
    await copyFile(from, tmp, fsc.COPYFILE_FICLONE);
    await rename(tmp, to);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

interface StoredEntry {
  cacheVersion: number;
  key: string;
  name: string;
  compileSeconds: number;
  ptxas: PtxasReport[];
  warnings: string[];
}

async function readEntry(cacheDir: string, key: string): Promise<StoredEntry | undefined> {
  try {
    const e = JSON.parse(await readFile(join(cacheDir, `${key}.json`), "utf8")) as StoredEntry;
    if (e.cacheVersion !== CACHE_VERSION || e.key !== key || !Array.isArray(e.ptxas)) return undefined;
    if (!statSync(join(cacheDir, `${key}.o`)).isFile()) return undefined;
    return e;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Demangling (optional: cu++filt next to nvcc, else c++filt; names stay mangled without either)

const demanglerMemo = new Map<string, string | null>();

function findDemangler(nvcc: string): string | undefined {
  if (demanglerMemo.has(nvcc)) return demanglerMemo.get(nvcc) ?? undefined;
  const candidates = [join(dirname(nvcc), "cu++filt"), ...nvccSearchDirs().flatMap((d) => [join(d, "cu++filt"), join(d, "c++filt")])];
  const found = candidates.find(isExecutable);
  demanglerMemo.set(nvcc, found ?? null);
  return found;
}

async function demangle(reports: PtxasReport[], nvcc: string): Promise<void> {
  const mangled = reports.filter((r) => r.mangled.startsWith("_Z"));
  if (mangled.length === 0) return;
  const tool = findDemangler(nvcc);
  if (!tool) return;
  const r = await execa(tool, mangled.map((m) => m.mangled), { reject: false, timeout: 10_000 });
  if (r.exitCode !== 0) return;
  const lines = String(r.stdout).split("\n");
  if (lines.length !== mangled.length) return;
  mangled.forEach((rep, i) => {
    const d = lines[i]!.trim();
    if (d && d !== rep.mangled) {
      rep.demangled = d;
      rep.name = d;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Compiling

class UnitFailed extends Error {
  constructor(readonly failure: NvccFailure) {
    super(`nvcc failed for ${failure.name}`);
  }
}

function resolveNvcc(opts: CompileOptions): string {
  if (opts.nvcc !== undefined) {
    if (!isExecutable(opts.nvcc)) {
      throw new StrataError(
        `nvcc not found at ${opts.nvcc}; install the CUDA toolkit or use --emit-only to write the sources without building`,
        undefined,
        "point the nvcc option at the toolkit's bin/nvcc, or leave it unset to search PATH, $CUDA_HOME/bin and /usr/local/cuda/bin",
      );
    }
    return resolve(opts.nvcc);
  }
  const nvcc = findNvcc();
  if (!nvcc) throw nvccNotFoundError();
  return nvcc;
}

function failureFrom(u: CompileUnit, sourcePath: string, text: string, exitCode: number | undefined, timedOut: boolean): NvccFailure {
  const lines = text.split(/\r?\n/).filter((l, i, a) => !(l.trim() === "" && (i === 0 || a[i - 1]!.trim() === "")));
  // Skip the ptxas info chatter so the excerpt starts at the actual problem.
  const relevant = lines.filter((l) => !/^ptxas info\s*:/.test(l) && !/^\s+\d+ bytes stack frame/.test(l));
  let excerpt = toFileColonLine(relevant.slice(0, EXCERPT_LINES).join("\n")).trimEnd();
  if (relevant.length > EXCERPT_LINES) excerpt += `\n... (${relevant.length - EXCERPT_LINES} more lines)`;
  if (!excerpt) excerpt = timedOut ? "(nvcc was killed after the time limit)" : "(nvcc printed nothing)";
  const d = parseDiagnostics(text).find((x) => x.severity === "error");
  return {
    ok: false,
    name: u.name,
    template: u.template,
    sourcePath,
    exitCode,
    timedOut,
    loc: d ? { file: d.file, line: d.line, col: 1 } : undefined,
    excerpt,
    stderr: text,
  };
}

async function compileOne(u: CompileUnit, opts: CompileOptions, nvcc: string, version: string): Promise<CompileResult> {
  const t0 = performance.now();
  const outDir = resolve(opts.outDir);
  const sourcePath = resolve(u.file ?? join(outDir, `${u.name}.cu`));
  const objPath = join(outDir, `${u.name}.o`);
  await mkdir(outDir, { recursive: true });
  await mkdir(dirname(sourcePath), { recursive: true });
  let existing: string | undefined;
  try {
    existing = await readFile(sourcePath, "utf8");
  } catch {
    existing = undefined;
  }
  if (existing !== u.source) await atomicWrite(sourcePath, u.source);

  const flags = codegenFlags(opts);
  const headers = collectHeaders(u.source, dirname(sourcePath), opts.includeDirs);
  const key = cacheKey({ source: u.source, headers, nvccVersion: version, flags });
  const cacheDir = opts.noCache ? undefined : resolve(opts.cacheDir ?? defaultCacheDir());

  if (cacheDir) {
    const hit = await readEntry(cacheDir, key);
    if (hit) {
      try {
        await atomicCopy(join(cacheDir, `${key}.o`), objPath);
        return {
          ok: true,
          name: u.name,
          objPath,
          sourcePath,
          cached: true,
          seconds: (performance.now() - t0) / 1000,
          compileSeconds: hit.compileSeconds,
          key,
          ptxas: hit.ptxas,
          warnings: hit.warnings,
        };
      } catch {
        // Entry evicted between read and copy: fall through to a real compile.
      }
    }
  }

  const tmpObj = tmpName(objPath) + ".o";
  const args = [
    "-c",
    ...flags,
    ...opts.includeDirs.flatMap((d) => ["-I", resolve(d)]),
    sourcePath,
    "-o",
    tmpObj,
  ];
  const tc = performance.now();
  const r = await execa(nvcc, args, {
    reject: false,
    all: true,
    stdin: "ignore",
    timeout: opts.timeoutMs,
    cwd: dirname(sourcePath),
  });
  const compileSeconds = (performance.now() - tc) / 1000;
  const all = String(r.all ?? `${r.stdout ?? ""}\n${r.stderr ?? ""}`);
  if (r.exitCode !== 0 || r.failed) {
    await rm(tmpObj, { force: true });
    const text = all.trim() ? all : String(r.message ?? "");
    throw new UnitFailed(failureFrom(u, sourcePath, text, r.exitCode, Boolean(r.timedOut)));
  }
  const stderr = String(r.stderr ?? "");
  const ptxas = parsePtxasOutput(stderr);
  await demangle(ptxas, nvcc);
  const warnings = extractWarnings(stderr);

  if (cacheDir) {
    try {
      await mkdir(cacheDir, { recursive: true });
      await atomicCopy(tmpObj, join(cacheDir, `${key}.o`));
      const entry: StoredEntry = { cacheVersion: CACHE_VERSION, key, name: u.name, compileSeconds, ptxas, warnings };
      await atomicWrite(join(cacheDir, `${key}.json`), JSON.stringify(entry, null, 1));
    } catch {
      // A read-only or full cache dir must not fail the build.
    }
  }
  await rename(tmpObj, objPath);
  return {
    ok: true,
    name: u.name,
    objPath,
    sourcePath,
    cached: false,
    seconds: (performance.now() - t0) / 1000,
    compileSeconds,
    key,
    ptxas,
    warnings,
  };
}

function requireVersion(nvcc: string): string {
  const v = nvccVersion(nvcc);
  if (!v) throw new StrataError(`could not determine the nvcc version from \`${nvcc} --version\``, undefined, "check that the CUDA toolkit installation is intact");
  return v;
}

/** Compile one unit to `<outDir>/<name>.o`. Throws NvccError (one failure) if nvcc fails. */
export async function compileUnit(u: CompileUnit, opts: CompileOptions): Promise<CompileResult> {
  const nvcc = resolveNvcc(opts);
  const version = requireVersion(nvcc);
  try {
    return await compileOne(u, opts, nvcc, version);
  } catch (e) {
    if (e instanceof UnitFailed) throw new NvccError([e.failure]);
    throw e;
  }
}

export interface CompileAllOptions extends CompileOptions {
  /** Concurrent nvcc processes; default os.availableParallelism(). */
  jobs?: number;
  /** Called after each unit finishes (success or failure), `done` counting from 1. */
  onProgress?: (done: number, total: number, unit: CompileUnit, result: CompileResult | NvccFailure) => void;
}

/**
 * Compile all units with at most `jobs` nvcc processes at once. Every unit is attempted; if any
 * failed, throws one NvccError listing all failures. Results are in input order.
 */
export async function compileAll(units: readonly CompileUnit[], opts: CompileAllOptions): Promise<CompileResult[]> {
  const seen = new Set<string>();
  for (const u of units) {
    if (seen.has(u.name)) {
      throw new StrataError(`two compile units are named "${u.name}" (template ${u.template})`, undefined, "kernel names must be unique: they name the object files");
    }
    seen.add(u.name);
  }
  if (units.length === 0) return [];
  const nvcc = resolveNvcc(opts);
  const version = requireVersion(nvcc);
  const jobs = Math.max(1, Math.min(units.length, Math.floor(opts.jobs ?? os.availableParallelism())));

  const results: (CompileResult | undefined)[] = new Array(units.length);
  const failures: { i: number; f: NvccFailure }[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= units.length) return;
      const u = units[i]!;
      let out: CompileResult | NvccFailure;
      try {
        out = await compileOne(u, opts, nvcc, version);
        results[i] = out;
      } catch (e) {
        if (!(e instanceof UnitFailed)) throw e;
        out = e.failure;
        failures.push({ i, f: e.failure });
      }
      done++;
      opts.onProgress?.(done, units.length, u, out);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  if (failures.length > 0) throw new NvccError(failures.sort((a, b) => a.i - b.i).map((x) => x.f));
  return results as CompileResult[];
}

// ---------------------------------------------------------------------------------------------
// Report checks

export interface SpillReport {
  /** Compile unit (kernel) name. */
  kernel: string;
  /** Function within the unit (demangled when available). */
  fn: string;
  arch: string;
  stackFrameBytes: number;
  spillStoreBytes: number;
  spillLoadBytes: number;
}

/** Functions with spill stores/loads or a non-empty stack frame (local arrays, spills, ABI calls). */
export function checkNoSpills(results: readonly Pick<CompileResult, "name" | "ptxas">[]): SpillReport[] {
  const out: SpillReport[] = [];
  for (const r of results) {
    for (const p of r.ptxas) {
      if (p.stackFrameBytes > 0 || p.spillStoreBytes > 0 || p.spillLoadBytes > 0) {
        out.push({
          kernel: r.name,
          fn: p.name,
          arch: p.arch,
          stackFrameBytes: p.stackFrameBytes,
          spillStoreBytes: p.spillStoreBytes,
          spillLoadBytes: p.spillLoadBytes,
        });
      }
    }
  }
  return out;
}

/** One line per SpillReport, for `strata compile` warnings. */
export function formatSpills(spills: readonly SpillReport[]): string[] {
  return spills.map(
    (s) => `${s.kernel}: ${s.fn}${s.arch ? ` (${s.arch})` : ""}: ${s.stackFrameBytes} bytes stack frame, ` +
      `${s.spillStoreBytes} bytes spill stores, ${s.spillLoadBytes} bytes spill loads`,
  );
}
