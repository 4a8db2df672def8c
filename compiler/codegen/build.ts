/**
 * Building a written project: kernels through the nvcc driver (parallel, content-hash cached,
 * ptxas reports kept in the manifest), then the runtime, host schedule and main objects through
 * the same cache (make's own commands), then `make`, which is left with the links. With no nvcc, the sources stay written and the error says how to build later.
 */
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { StrataError } from "../ir/errors.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, nvccNotFoundError, type CompileResult, type CompileUnit, type NvccArch } from "../nvcc/driver.js";
import type { EmittedProject } from "./project.js";

export interface BuildOptions {
  arch?: NvccArch;
  jobs?: number;
  /** Compile kernels only (CI: checks every kernel builds, without linking). */
  kernelsOnly?: boolean;
  log?: (line: string) => void;
  /** How to name the project folder in messages (e.g. its final path while building in a temporary one). */
  displayDir?: string;
}

export interface BuildResult {
  kernels: CompileResult[];
  spills: string[];
  seconds: number;
}

/** Must match KERNEL_FLAGS in templates/Makefile.hbs; hidden visibility: libmodel.so exports only the strata_* C ABI. */
export const KERNEL_EXTRA_FLAGS = ["-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden"];

/** One object `make` would compile: its source, object, and nvcc flags (include dirs apart). */
export interface MakeCompile {
  source: string;
  object: string;
  flags: string[];
  includeDirs: string[];
}

/**
 * The compile commands of `make -n` output ("nvcc FLAGS -c SRC -o OBJ"), split into flags and
 * include dirs, with `-gencode X` dropped (the nvcc driver adds the arch's own). Links and other
 * lines are skipped.
 */
export function makeCompiles(dryRun: string): MakeCompile[] {
  const out: MakeCompile[] = [];
  for (const line of dryRun.split("\n")) {
    const t = line.trim().split(/\s+/);
    if (!t[0] || !/(^|\/)nvcc$/.test(t[0])) continue;
    const c = t.indexOf("-c"), o = t.indexOf("-o");
    if (c < 0 || o < 0 || c + 1 >= t.length || o + 1 >= t.length) continue;
    const flags: string[] = [];
    const includeDirs: string[] = [];
    for (let i = 1; i < t.length; i++) {
      if (i === c || i === c + 1 || i === o || i === o + 1) continue;
      const a = t[i]!;
      if (a === "-gencode") {
        i++;
        continue;
      }
      if (a === "-I") includeDirs.push(t[++i]!);
      else if (a.startsWith("-I")) includeDirs.push(a.slice(2));
      else flags.push(a);
    }
    out.push({ source: t[c + 1]!, object: t[o + 1]!, flags, includeDirs });
  }
  return out;
}

/**
 * The runtime, host schedule and main objects through the nvcc driver's content cache, before
 * `make` runs: the commands are make's own (`make -n`), so make then finds every object up to date
 * and only links — a rebuild of an unchanged model recompiles nothing.
 */
async function compileHostObjects(dir: string, dry: string, opts: BuildOptions, log: (l: string) => void): Promise<{ total: number; cached: number }> {
  const groups = new Map<string, { outDir: string; flags: string[]; includeDirs: string[]; units: CompileUnit[] }>();
  for (const m of makeCompiles(dry)) {
    const outDir = path.dirname(path.join(dir, m.object));
    const name = path.basename(m.object, ".o");
    if (path.join(outDir, `${name}.o`) !== path.join(dir, m.object)) continue;
    const key = JSON.stringify([outDir, m.flags, m.includeDirs]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { outDir, flags: m.flags, includeDirs: m.includeDirs.map((d) => path.resolve(dir, d)), units: [] }));
    const file = path.join(dir, m.source);
    g.units.push({ name, template: m.source, source: readFileSync(file, "utf8"), file });
  }
  const total = [...groups.values()].reduce((n, g) => n + g.units.length, 0);
  const jobs = opts.jobs ?? os.availableParallelism();
  let done = 0;
  let cached = 0;
  await Promise.all(
    [...groups.values()].map((g) =>
      compileAll(g.units, {
        arch: opts.arch ?? "sm_90a",
        includeDirs: g.includeDirs,
        flags: g.flags,
        outDir: g.outDir,
        jobs: Math.max(1, Math.round((jobs * g.units.length) / Math.max(1, total))),
        onProgress: (_d, _t, unit, r) => {
          const hit = "ok" in r && r.ok && r.cached;
          if (hit) cached++;
          log(`  [host ${++done}/${total}] ${unit.template}${"ok" in r && r.ok ? (hit ? " (cached)" : ` ${r.seconds.toFixed(1)}s`) : " FAILED"}`);
        },
      }),
    ),
  );
  return { total, cached };
}

/** What `make` would run (a dry run): its compile commands and the step count; "" when make fails (it reports its own error when run). */
async function makeDryRun(dir: string, args: string[]): Promise<string> {
  try {
    return (await execa("make", ["-n", ...args], { cwd: dir })).stdout;
  } catch {
    return "";
  }
}

/** "nvcc … -c runtime/src/json.cpp -o …" → "runtime/src/json.cpp"; "nvcc -shared … -o lib/libmodel.so" → "link lib/libmodel.so". */
export function makeStepName(line: string): string | undefined {
  if (!/(^|\/)nvcc\s/.test(line.trim())) return undefined;
  const c = /\s-c\s+(\S+)/.exec(line);
  if (c) return c[1]!;
  const o = /\s-o\s+(\S+)/.exec(line);
  return o ? `link ${o[1]}` : undefined;
}

export async function buildProject(p: EmittedProject, dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const nvcc = findNvcc();
  if (!nvcc) throw nvccNotFoundError();
  const t0 = Date.now();
  const units = p.kernels.map((k) => ({ name: k.name, template: k.spec.template, source: k.source, file: path.join(dir, k.file) }));
  const results = await compileAll(units, {
    arch: opts.arch ?? "sm_90a",
    includeDirs: [path.join(dir, "include")],
    extraFlags: KERNEL_EXTRA_FLAGS,
    outDir: path.join(dir, "build", "kernels"),
    jobs: opts.jobs,
    onProgress: (done, total, unit, r) => log(`  [${done}/${total}] ${unit.name}${"ok" in r && r.ok ? (r.cached ? " (cached)" : ` ${r.seconds.toFixed(1)}s`) : " FAILED"}`),
  });
  const spills = formatSpills(checkNoSpills(results));
  for (const s of spills) log(`warning: ${s}`);

  // keep the ptxas reports with the kernels in the manifest
  const mf = path.join(dir, "manifest.json");
  const manifest = JSON.parse(readFileSync(mf, "utf8")) as { kernels: { name: string; ptxas?: unknown }[] };
  for (const k of manifest.kernels) {
    const r = results.find((x) => x.name === k.name);
    if (r) k.ptxas = r.ptxas.map(({ name, registers, smemBytes, stackFrameBytes, spillStoreBytes, spillLoadBytes }) => ({ name, registers, smemBytes, stackFrameBytes, spillStoreBytes, spillLoadBytes }));
  }
  writeFileSync(mf, JSON.stringify(manifest, null, 1) + "\n");

  if (!opts.kernelsOnly) {
    const shown = opts.displayDir ?? dir;
    const makeArgs = [`NVCC=${nvcc}`, `ARCH=${opts.arch ?? "sm_90a"}`];
    const dry = await makeDryRun(dir, makeArgs);
    const host = await compileHostObjects(dir, dry, opts, log);
    if (host.total) log(`  runtime, host schedule and main: ${host.cached}/${host.total} objects from cache`);
    // what make has left: its steps less the objects just compiled (for the progress count)
    const steps = dry ? dry.split("\n").filter((l) => makeStepName(l)).length - host.total : undefined;
    log(`  make: runtime, host schedule and link of bin/model and lib/libmodel.so${steps ? ` (${steps} steps)` : ""}`);
    const tm = Date.now();
    let done = 0;
    try {
      const child = execa("make", ["-j", String(opts.jobs ?? os.availableParallelism()), ...makeArgs], { cwd: dir, all: true, buffer: { all: true } });
      // one progress line per compile / link command make starts (its echo of the nvcc command line)
      child.all?.on("data", (chunk: Buffer) => {
        for (const l of chunk.toString().split("\n")) {
          const what = makeStepName(l);
          if (what) log(`  [make ${++done}${steps ? `/${Math.max(steps, done)}` : ""}] ${what} ${((Date.now() - tm) / 1000).toFixed(1)}s`);
        }
      });
      await child;
    } catch (e) {
      const err = e as { all?: string; shortMessage?: string };
      const tail = (err.all ?? err.shortMessage ?? "").split("\n").slice(-25).join("\n");
      throw new StrataError(`make failed in ${shown}:\n${tail}`, undefined, `the sources are written; fix the error and run 'make -C ${shown}'`);
    }
  }
  return { kernels: results, spills, seconds: (Date.now() - t0) / 1000 };
}
