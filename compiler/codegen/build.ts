/**
 * Building a written project: kernels through the nvcc driver (parallel, content-hash cached,
 * ptxas reports kept in the manifest), then `make` for the runtime, the host schedule and the
 * link. With no nvcc, the sources stay written and the error says how to build later.
 */
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { StrataError } from "../ir/errors.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, nvccNotFoundError, type CompileResult, type NvccArch } from "../nvcc/driver.js";
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

/** How many compile / link commands `make` will run (a dry run), for the progress count. */
async function countMakeSteps(dir: string, args: string[]): Promise<number | undefined> {
  try {
    const r = await execa("make", ["-n", ...args], { cwd: dir });
    return r.stdout.split("\n").filter((l) => makeStepName(l)).length;
  } catch {
    return undefined;
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
    const steps = await countMakeSteps(dir, makeArgs);
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
