import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StrataError } from "../../compiler/ir/errors.js";
import {
  checkNoSpills,
  codegenFlags,
  collectHeaders,
  compileAll,
  compileUnit,
  defaultCacheDir,
  extractWarnings,
  findNvcc,
  NvccError,
  nvccNotFoundError,
  nvccVersion,
  parseDiagnostics,
  parseNvccVersion,
  parsePtxasOutput,
  type CompileResult,
  type CompileUnit,
} from "../../compiler/nvcc/driver.js";

const PTXAS_FIXTURE = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z11rmsnorm_f16PK6__halfPS_i' for 'sm_90a'
ptxas info    : Function properties for _Z11rmsnorm_f16PK6__halfPS_i
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8192 bytes smem, 400 bytes cmem[0]
ptxas info    : Compile time = 3.459 ms
ptxas info    : Compiling entry function 'gemm_bf16_128x128' for 'sm_90a'
ptxas info    : Function properties for gemm_bf16_128x128
    72 bytes stack frame, 48 bytes spill stores, 64 bytes spill loads
ptxas info    : Used 255 registers, used 2 barriers, 73728 bytes smem, 560 bytes cmem[0], 16 bytes cmem[2], 72 bytes cumulative stack size
ptxas info    : Compile time = 812.5 ms
ptxas info    : Function properties for _Z6helperPfi
    256 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
`;

describe("ptxas report parsing", () => {
  it("parses registers, smem, cmem, stack and spills per function", () => {
    const r = parsePtxasOutput(PTXAS_FIXTURE);
    expect(r).toHaveLength(3);
    const [a, b, c] = r;
    expect(a).toMatchObject({
      mangled: "_Z11rmsnorm_f16PK6__halfPS_i",
      arch: "sm_90a",
      kind: "entry",
      registers: 40,
      barriers: 1,
      smemBytes: 8192,
      cmemBytes: 400,
      cmem: { 0: 400 },
      stackFrameBytes: 0,
      spillStoreBytes: 0,
      spillLoadBytes: 0,
      compileMs: 3.459,
    });
    expect(b).toMatchObject({
      mangled: "gemm_bf16_128x128",
      name: "gemm_bf16_128x128",
      registers: 255,
      barriers: 2,
      smemBytes: 73728,
      cmemBytes: 576,
      cmem: { 0: 560, 2: 16 },
      stackFrameBytes: 72,
      spillStoreBytes: 48,
      spillLoadBytes: 64,
      cumulativeStackBytes: 72,
    });
    expect(c).toMatchObject({ mangled: "_Z6helperPfi", kind: "function", stackFrameBytes: 256, registers: 0 });
    expect(checkNoSpills([{ name: "k", ptxas: r }]).map((s) => s.fn)).toEqual(["gemm_bf16_128x128", "_Z6helperPfi"]);
  });

  it("parses the older 'Used N registers, N bytes smem' form and multiple archs", () => {
    const text = `ptxas info    : Compiling entry function 'k' for 'sm_80'
ptxas info    : Function properties for k
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, 4096 bytes smem, 352 bytes cmem[0]
ptxas info    : Compiling entry function 'k' for 'sm_90a'
ptxas info    : Function properties for k
    8 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 30 registers, used 0 barriers, 4096 bytes smem
`;
    const r = parsePtxasOutput(text);
    expect(r.map((x) => [x.arch, x.registers, x.smemBytes, x.cmemBytes, x.spillStoreBytes])).toEqual([
      ["sm_80", 32, 4096, 352, 0],
      ["sm_90a", 30, 4096, 0, 8],
    ]);
  });

  it("parses diagnostics, warnings and the nvcc version", () => {
    const err = `k.cu(2): error: expected an expression\n    a[0] = 1 +;\n              ^\n\n1 error detected in the compilation of "k.cu".\n`;
    expect(parseDiagnostics(err)).toEqual([{ file: "k.cu", line: 2, severity: "error", message: "expected an expression" }]);
    const warn = `k.cu(2): warning #177-D: variable "unused" was declared but never referenced\n  int unused = 3;\n      ^\n\nptxas warning : Registers are spilled to local memory in function 'k', 8 bytes spill stores\nptxas info    : Used 8 registers\n`;
    const w = extractWarnings(warn);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^k\.cu:2: warning #177-D: variable "unused"/);
    expect(w[1]).toMatch(/^ptxas warning : Registers are spilled/);
    expect(parseNvccVersion("Cuda compilation tools, release 13.0, V13.0.88\nBuild cuda_13.0.r13.0/compiler.36424714_0")).toBe("13.0.88");
  });

  it("defaults: sm_90a gencode, -Xptxas -v, no fast math, cache dir from env", () => {
    expect(codegenFlags({})).toEqual(["-gencode", "arch=compute_90a,code=sm_90a", "-std=c++17", "-O3", "-Xptxas", "-v", "-lineinfo"]);
    expect(codegenFlags({ arch: "sm_80", flags: ["-O2"] })).toEqual(["-gencode", "arch=compute_80,code=sm_80", "-O2", "-Xptxas", "-v"]);
    expect(defaultCacheDir({ STRATA_CACHE_DIR: "/x/c" })).toBe("/x/c");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/strata/nvcc");
  });

  it("collects headers recursively within includeDirs", () => {
    const d = mkdtempSync(join(tmpdir(), "strata-inc-"));
    try {
      writeFileSync(join(d, "a.cuh"), '#pragma once\n#include "b.cuh"\n#include <cuda_fp16.h>\n');
      writeFileSync(join(d, "b.cuh"), '#include "a.cuh"\n');
      const h = collectHeaders('#include "a.cuh"\n#include <cstdint>\n', undefined, [d]);
      expect(h.map((x) => [x.spec, Boolean(x.path)])).toEqual([
        ["a.cuh", true],
        ["b.cuh", true],
        ["cuda_fp16.h", false],
        ["cstdint", false],
      ]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it("a missing nvcc gives a clear StrataError", async () => {
    const e = nvccNotFoundError({ PATH: "/opt/a:/opt/b", CUDA_HOME: "/opt/cuda" });
    expect(e).toBeInstanceOf(StrataError);
    expect(e.message).toMatch(
      /^nvcc not found on PATH \(looked in \/opt\/a, \/opt\/b, \/opt\/cuda\/bin, .*\/usr\/local\/cuda\/bin\); install the CUDA toolkit or use --emit-only to write the sources without building/,
    );
    const err = await compileAll([{ name: "k", template: "t.cu.hbs", source: "" }], {
      includeDirs: [],
      outDir: tmpdir(),
      nvcc: "/nonexistent/bin/nvcc",
    }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(StrataError);
    expect((err as Error).message).toMatch(/nvcc not found/);
    if (!existsSync("/usr/local/cuda/bin/nvcc")) expect(findNvcc({ PATH: "/nonexistent" })).toBeUndefined();
  });
});

const HAVE_NVCC = Boolean(findNvcc());

describe("real nvcc", () => {
  const root = mkdtempSync(join(tmpdir(), "strata-nvcc-test-"));
  const cacheDir = join(root, "cache");
  const incDir = join(root, "include");
  const outDir = join(root, "out");
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const opts = () => ({ includeDirs: [incDir], outDir, cacheDir });
  const header = (body: string) => {
    rmSync(incDir, { recursive: true, force: true });
    mkdirSync(incDir, { recursive: true });
    writeFileSync(join(incDir, "strata_k.cuh"), `#pragma once\n#include "strata_scale.cuh"\n`);
    writeFileSync(join(incDir, "strata_scale.cuh"), `#pragma once\n${body}\n`);
  };
  const unit: CompileUnit = {
    name: "scale_add",
    template: "scale_add.cu.hbs",
    source: `#include "strata_k.cuh"
__global__ void scale_add(float* out, const float* in, int n) {
  __shared__ float tile[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = i < n ? in[i] : 0.f;
  __syncthreads();
  if (i < n) out[i] = SCALE * tile[255 - threadIdx.x];
}
`,
  };

  it.skipIf(!HAVE_NVCC)("compiles, caches, and misses when an included header changes", async () => {
    expect(nvccVersion()).toMatch(/^\d+\.\d+\.\d+$/);
    header("#define SCALE 2.0f");
    const first = await compileUnit(unit, opts());
    expect(first.cached).toBe(false);
    expect(existsSync(first.objPath)).toBe(true);
    const k = first.ptxas.find((p) => p.mangled.includes("scale_add"))!;
    expect(k).toBeDefined();
    expect(k.arch).toBe("sm_90a");
    expect(k.registers).toBeGreaterThan(0);
    expect(k.smemBytes).toBe(1024);
    expect(k.barriers).toBe(1);
    expect(checkNoSpills([first])).toEqual([]);
    const obj1 = readFileSync(first.objPath);

    rmSync(first.objPath);
    const second = await compileUnit(unit, opts());
    expect(second.cached).toBe(true);
    expect(second.key).toBe(first.key);
    expect(second.ptxas).toEqual(first.ptxas);
    expect(second.warnings).toEqual(first.warnings);
    expect(readFileSync(second.objPath).equals(obj1)).toBe(true);
    // No temp files left behind in the cache.
    expect(readdirSync(cacheDir).filter((f) => f.includes(".tmp-"))).toEqual([]);
    expect(readdirSync(cacheDir).sort()).toEqual([`${first.key}.json`, `${first.key}.o`]);

    header("#define SCALE 3.0f"); // nested header content change → new key → miss
    const third = await compileUnit(unit, opts());
    expect(third.cached).toBe(false);
    expect(third.key).not.toBe(first.key);
  });

  it.skipIf(!HAVE_NVCC)("a syntax error names the kernel, the template and nvcc's file:line message", async () => {
    header("#define SCALE 2.0f");
    const bad: CompileUnit = {
      name: "broken_kernel",
      template: "broken.cu.hbs",
      source: `__global__ void broken_kernel(float* a) {\n  a[0] = 1.0f +;\n}\n`,
    };
    const err = await compileUnit(bad, opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvccError);
    expect(err).toBeInstanceOf(StrataError);
    const msg = (err as NvccError).message;
    expect(msg).toContain("broken_kernel");
    expect(msg).toContain("broken.cu.hbs");
    expect(msg).toMatch(/broken_kernel\.cu:2: error: expected an expression/);
    expect(msg).toContain("hint:");
    const f = (err as NvccError).failures[0]!;
    expect(f.loc?.line).toBe(2);
    expect(f.loc?.file).toMatch(/broken_kernel\.cu$/);
  });

  it.skipIf(!HAVE_NVCC)("compileAll runs 3 units with jobs 2 (progress x3), checkNoSpills flags the stack frame, failures are aggregated", async () => {
    // Third unit: a runtime-indexed local array, which ptxas must place in a stack frame.
    const units: CompileUnit[] = [
      ...[1, 2].map((i) => ({
        name: `k${i}`,
        template: "k.cu.hbs",
        source: `extern "C" __global__ void k${i}(float* a) { a[threadIdx.x] *= ${i}.0f; }\n`,
      })),
      {
        name: "local_array",
        template: "local_array.cu.hbs",
        source: `__global__ void local_array(float* out, int k, int n) {
  float loc[64];
#pragma unroll 1
  for (int i = 0; i < 64; i++) loc[i] = out[i * n + threadIdx.x];
  out[threadIdx.x] = loc[k & 63];
}
`,
      },
    ];
    const progress: [number, number, string, boolean][] = [];
    const results = await compileAll(units, {
      ...opts(),
      jobs: 2,
      onProgress: (done, total, u, r) => progress.push([done, total, u.name, r.ok]),
    });
    expect(results.map((r: CompileResult) => r.name)).toEqual(["k1", "k2", "local_array"]);
    expect(progress).toHaveLength(3);
    expect(progress.map((p) => p[0])).toEqual([1, 2, 3]);
    expect(progress.every((p) => p[1] === 3 && p[3])).toBe(true);
    expect(results[0]!.ptxas[0]!.name).toBe("k1"); // extern "C": unmangled

    // checkNoSpills flags only the local-array kernel.
    const spills = checkNoSpills(results);
    expect(spills.map((x) => x.kernel)).toEqual(["local_array"]);
    expect(spills[0]!.stackFrameBytes).toBeGreaterThanOrEqual(256);
    expect(spills[0]!.fn).toMatch(/local_array/);

    // Now all cached, plus two broken units: one NvccError listing both.
    const mixed = [...units, { name: "bad1", template: "b1.hbs", source: "int x = ;\n" }, { name: "bad2", template: "b2.hbs", source: "void f( {\n" }];
    const err = await compileAll(mixed, { ...opts(), jobs: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvccError);
    expect((err as NvccError).failures.map((f) => f.name)).toEqual(["bad1", "bad2"]);
    expect((err as NvccError).message).toMatch(/nvcc failed for 2 kernels[\s\S]*bad1 \(template b1\.hbs\)[\s\S]*bad2 \(template b2\.hbs\)/);
  });
});
