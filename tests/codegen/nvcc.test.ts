/**
 * CI compile check (needs nvcc, no GPU): every kernel of every tiny example and of the 8B hybrid
 * compiles for sm_90a through the nvcc driver (content-hash cache in the default cache dir, so CI
 * reruns reuse it), with zero spill bytes and no stack frame; then one tiny project is built end
 * to end with plain `make` and its outputs are checked (exported C ABI, CLI usage text).
 *
 * Cold (empty cache) this compiles ~45 kernels + one project; warm, the compileAll part is a few
 * seconds and the `make` build dominates. Skipped when nvcc is not found.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelDef } from "../../compiler/dsl/index.js";
import { emitProject, writeProject } from "../../compiler/codegen/project.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { checkNoSpills, codegenFlags, compileAll, defaultCacheDir, findNvcc, formatSpills, type CompileResult, type CompileUnit } from "../../compiler/nvcc/driver.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyMamba2 from "../../examples/tiny-mamba2.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyCustom from "../../examples/tiny-custom-ratio.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";

const nvcc = findNvcc();
const MODELS: Record<string, ModelDef> = {
  "tiny-hybrid": tinyHybrid,
  "tiny-mamba": tinyMamba,
  "tiny-mamba2": tinyMamba2,
  "tiny-transformer": tinyTransformer,
  "tiny-custom-ratio": tinyCustom,
  "mamba2-hybrid-8b": hybrid8b,
};

/** The provenance header (up to the "launcher buffers" line) differs per model; the code after it must not. */
const body = (src: string) => src.slice(src.indexOf("\n", src.indexOf("\n// launcher buffers") + 1) + 1);

const timings: string[] = [];
const time = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings.push(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  }
};

afterAll(() => {
  if (timings.length) console.log(`[nvcc.test timings, jobs=${os.availableParallelism()}]\n  ${timings.join("\n  ")}`);
});

it("the project Makefile compiles kernels with the driver's flags (so cached objects match `make`)", () => {
  const mk = emitProject(tinyHybrid).files["Makefile"]!;
  const line = /^KERNEL_FLAGS := (.*)$/m.exec(mk)?.[1];
  expect(line).toBeDefined();
  const flags = codegenFlags({ arch: "sm_90a", extraFlags: KERNEL_EXTRA_FLAGS }).join(" ");
  expect(line!.replace("$(GENCODE)", "-gencode arch=compute_90a,code=sm_90a").replace(" -Iinclude", "").split(/\s+/).sort()).toEqual(flags.split(/\s+/).sort());
});

describe.skipIf(!nvcc)("CI compile check (nvcc, sm_90a)", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-nvcc-test-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  let units: CompileUnit[] = [];
  const usedBy = new Map<string, string[]>();
  let results: CompileResult[] = [];

  beforeAll(() => {
    const byName = new Map<string, CompileUnit>();
    for (const [model, def] of Object.entries(MODELS)) {
      for (const k of emitProject(def).kernels) {
        usedBy.set(k.name, [...(usedBy.get(k.name) ?? []), model]);
        const seen = byName.get(k.name);
        if (seen) {
          // same name ⇒ same kernel code (the name is a hash of the body); only the header differs
          expect(body(k.source), `${k.name} in ${model}`).toBe(body(seen.source));
          continue;
        }
        byName.set(k.name, { name: k.name, template: k.spec.template, source: k.source });
      }
    }
    units = [...byName.values()];
  });

  it("every kernel compiles with zero spills and no stack frame", { timeout: 900_000 }, async () => {
    expect(units.length).toBeGreaterThan(20);
    results = await time(`compileAll ${units.length} unique kernels (${Object.keys(MODELS).length} models)`, () =>
      compileAll(units, {
        arch: "sm_90a",
        includeDirs: [INCLUDE_DIR],
        extraFlags: KERNEL_EXTRA_FLAGS,
        outDir: path.join(work, "kernels"),
        jobs: os.availableParallelism(),
      }),
    );
    const cached = results.filter((r) => r.cached).length;
    const slowest = [...results].sort((a, b) => b.compileSeconds - a.compileSeconds).slice(0, 3);
    timings.push(`  ${cached}/${results.length} from cache (${defaultCacheDir()}); slowest cold compiles: ${slowest.map((r) => `${r.name} ${r.compileSeconds.toFixed(1)}s`).join(", ")}`);
    expect(results.map((r) => r.name)).toEqual(units.map((u) => u.name));
    for (const r of results) {
      expect(existsSync(r.objPath), r.objPath).toBe(true);
      // each kernel has a ptxas report for its __global__ function(s), for sm_90a
      const entries = r.ptxas.filter((p) => p.kind === "entry");
      expect(entries.length, `${r.name} (used by ${usedBy.get(r.name)!.join(", ")}) has no ptxas entry report`).toBeGreaterThan(0);
      for (const p of entries) expect(p.arch, r.name).toBe("sm_90a");
    }
    expect(formatSpills(checkNoSpills(results))).toEqual([]);
  });

  it("the 8B hybrid's kernels are all in the compiled set", () => {
    const names = new Set(results.map((r) => r.name));
    const big = emitProject(hybrid8b).kernels;
    expect(big.length).toBeGreaterThan(5);
    for (const k of big) expect(names.has(k.name), k.name).toBe(true);
  });

  describe("plain `make` of an emitted tiny-hybrid project", () => {
    const dir = path.join(work, "tiny-hybrid");

    beforeAll(async () => {
      writeProject(emitProject(tinyHybrid), dir);
      await time("make (runtime + 13 kernels + model.cu + link)", () =>
        execa("make", ["-j", String(os.availableParallelism()), `NVCC=${nvcc}`], { cwd: dir, all: true }).catch((e: { all?: string }) => {
          throw new Error(`make failed:\n${(e.all ?? String(e)).split("\n").slice(-40).join("\n")}`);
        }),
      );
    }, 900_000);

    it("builds bin/model and lib/libmodel.so", () => {
      expect(existsSync(path.join(dir, "bin/model"))).toBe(true);
      expect(existsSync(path.join(dir, "lib/libmodel.so"))).toBe(true);
    });

    it("lib/libmodel.so exports the strata_* C ABI and nothing else", async () => {
      const { stdout } = await execa("nm", ["-D", "--defined-only", path.join(dir, "lib/libmodel.so")]);
      const syms = stdout.split("\n").map((l) => l.trim().split(/\s+/)[2]).filter((s): s is string => !!s);
      for (const s of ["strata_model_create", "strata_model_destroy", "strata_last_error"]) expect(syms).toContain(s);
      expect(syms.filter((s) => !s.startsWith("strata_") && !s.startsWith("_"))).toEqual([]);
    });

    it("bin/model --help prints usage", async () => {
      const r = await execa(path.join(dir, "bin/model"), ["--help"], { reject: false, all: true, timeout: 30_000 });
      expect(r.all).toMatch(/usage/i);
    });
  });
});
