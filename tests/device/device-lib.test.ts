/**
 * Compile checks of the device library (templates/include, nvcc only, no GPU):
 *   - tests/device/device_lib_check.cu — every kernel family's launcher and every strata/ wrapper
 *     (mbarrier, TMA, all wgmma shapes included) — builds for sm_90a with zero spills and for
 *     sm_80, where the architecture guards must turn the Hopper-only instructions into traps;
 *   - the GEMM the compiler emits for sm_90a really issues wgmma: the PTX of its kernel entry has
 *     wgmma.mma_async, ptxas does not report the wgmma pipeline serialized, and — where
 *     cuobjdump is installed (not on CI) — the SASS has HGMMA; the sm_80 GEMM uses mma.sync;
 *   - the GPU harnesses (tests/gpu/*_test.cu) still compile against the library (to PTX).
 * Builds are cached by content (host-build.ts): a warm run only reads the cache.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { emitProject } from "../../compiler/codegen/project.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { findNvcc, nvccSearchDirs, parsePtxasOutput } from "../../compiler/nvcc/driver.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import { cachedNvcc } from "./host-build.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const nvcc = findNvcc();
const cuobjdump = nvcc
  ? [path.dirname(nvcc), ...nvccSearchDirs()].map((d) => path.join(d, "cuobjdump")).find((p) => existsSync(p))
  : undefined;

/** nvcc -c with the kernels' flags, keeping the PTX and cubin (src.ptx, src.cubin) and the ptxas log. */
async function build(source: string, arch: "sm_90a" | "sm_80", what: string) {
  const n = arch.slice(3);
  const r = await cachedNvcc(source, [INCLUDE_DIR], ["-c", "-std=c++17", "-O3", "-gencode", `arch=compute_${n},code=sm_${n}`, "-Xptxas", "-v", "--keep", "-o", "out.o"], `${what} (${arch})`);
  const ptxFile = readdirSync(r.dir).find((f) => f.endsWith(".ptx"));
  const cubin = readdirSync(r.dir).find((f) => f.endsWith(".cubin"));
  expect(ptxFile, `${what}: no PTX kept in ${r.dir}`).toBeDefined();
  return { ...r, ptx: readFileSync(path.join(r.dir, ptxFile!), "utf8"), cubin: cubin && path.join(r.dir, cubin), reports: parsePtxasOutput(r.log) };
}

/** The PTX body of each .entry whose name contains `part`. */
function entries(ptx: string, part: string): string[] {
  const out: string[] = [];
  for (const m of ptx.matchAll(/\.entry\s+(\S+)\(/g)) {
    if (!m[1]!.includes(part)) continue;
    const start = m.index!;
    const next = ptx.indexOf(".entry", start + 6);
    out.push(ptx.slice(start, next < 0 ? undefined : next));
  }
  return out;
}

const FAMILIES = ["gemm_mma_kernel", "gemm_wgmma_kernel", "gemm_ws_kernel", "attention_fwd_kernel", "attention_fwd_wgmma_kernel", "attention_splitkv_combine_kernel", "ssd_chunked_fwd_kernel", "ssd_chunk_parallel_fwd_kernel", "ssd_decode_kernel", "selective_scan_fwd_kernel", "causal_conv1d_fwd_kernel", "math_kernel", "row_kernel", "ptx_kernel", "tma_kernel"];
const HOPPER_ONLY = [/wgmma\.mma_async/, /cp\.async\.bulk\.tensor/, /mbarrier\.try_wait/, /mbarrier\.arrive\.expect_tx/, /fence\.proxy\.async/, /prefetch\.tensormap/];

describe.skipIf(!nvcc)("device library compile checks", () => {
  const source = readFileSync(path.join(HERE, "device_lib_check.cu"), "utf8");

  it("every kernel family and wrapper compiles for sm_90a, with zero spills, Hopper instructions included", { timeout: 300_000 }, async () => {
    const b = await build(source, "sm_90a", "device_lib_check");
    const names = b.reports.filter((r) => r.kind === "entry").map((r) => r.name);
    for (const f of FAMILIES) expect(names.some((n) => n.includes(f)), `${f} not compiled for sm_90a`).toBe(true);
    for (const r of b.reports) expect(r.spillStoreBytes + r.spillLoadBytes + r.stackFrameBytes, `${r.name} spills on sm_90a`).toBe(0);
    for (const re of HOPPER_ONLY) expect(b.ptx, `${re} missing from the sm_90a PTX`).toMatch(re);
    // the mbarrier/TMA round trip has each of its steps
    const tma = entries(b.ptx, "tma_kernel").join("\n");
    for (const ins of ["mbarrier.init", "fence.mbarrier_init", "mbarrier.arrive.expect_tx", "cp.async.bulk.tensor.2d.shared::cluster.global", "mbarrier.try_wait.parity", "cp.async.bulk.tensor.2d.global.shared::cta", "cp.async.bulk.commit_group", "cp.async.bulk.wait_group.read"])
      expect(tma, `tma_kernel lacks ${ins}`).toContain(ins);
  });

  it("the same translation unit compiles for sm_80; Hopper-only wrappers become traps there", { timeout: 300_000 }, async () => {
    const b = await build(source, "sm_80", "device_lib_check");
    const names = b.reports.filter((r) => r.kind === "entry").map((r) => r.name);
    for (const f of FAMILIES) expect(names.some((n) => n.includes(f)), `${f} not compiled for sm_80`).toBe(true);
    for (const re of HOPPER_ONLY) expect(b.ptx).not.toMatch(re);
    expect(b.ptx).toMatch(/mma\.sync\.aligned\.m16n8k16/);
    expect(b.ptx).toMatch(/cp\.async\.cg\.shared\.global/);
    expect(b.ptx).toMatch(/mbarrier\.test_wait\.parity/);
    for (const e of entries(b.ptx, "gemm_wgmma_kernel")) expect(e).toMatch(/\btrap;/);
    for (const e of entries(b.ptx, "tma_kernel")) expect(e).toMatch(/\btrap;/);
  });

  const gemm = (arch: "sm_90a" | "sm_80") => emitProject(tinyHybrid, { arch }).kernels.find((k) => k.spec.template === "gemm.cu.hbs")!;

  it("the emitted sm_90a GEMM is the warp-specialized TMA kernel: wgmma (PTX) fed by TMA on mbarriers, unserialized (ptxas)", { timeout: 300_000 }, async () => {
    const k = gemm("sm_90a");
    const b = await build(k.source, "sm_90a", k.name);
    // the forward default (kernels/tiles.ts DEFAULT_FORWARD_GEMM_TILES) is gemm.cuh's WsConfig
    const [body, ...rest] = entries(b.ptx, "gemm_ws_kernel");
    expect(body, `${k.name}: no gemm_ws_kernel entry in the PTX`).toBeDefined();
    expect(rest).toEqual([]);
    expect(entries(b.ptx, "gemm_mma_kernel")).toEqual([]);
    expect(entries(b.ptx, "gemm_wgmma_kernel")).toEqual([]);
    // bf16 x bf16 -> fp32 warpgroup MMAs (m64nNk16; N is the tile width of the config in use)
    expect(body).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16/);
    // producer: TMA loads completed on mbarrier transaction counts; consumers/producer rebalance registers
    for (const ins of ["wgmma.fence.sync.aligned", "wgmma.commit_group.sync.aligned", "wgmma.wait_group.sync.aligned", "cp.async.bulk.tensor.2d.shared::cluster.global", "mbarrier.arrive.expect_tx", "mbarrier.try_wait.parity", "setmaxnreg.inc", "setmaxnreg.dec"])
      expect(body, ins).toContain(ins);
    expect(body).not.toMatch(/\btrap;/);
    expect(b.log, "ptxas serialized the wgmma pipeline").not.toMatch(/wgmma[^\n]*serializ/i);
    for (const r of b.reports) expect(r.spillStoreBytes + r.spillLoadBytes, `${r.name} spills`).toBe(0);
  });

  it.skipIf(!cuobjdump)("the emitted sm_90a GEMM's SASS has HGMMA (cuobjdump)", { timeout: 120_000 }, async () => {
    const k = gemm("sm_90a");
    const b = await build(k.source, "sm_90a", k.name);
    expect(b.cubin).toBeDefined();
    const { stdout } = await execa(cuobjdump!, ["-sass", b.cubin!]);
    expect(stdout).toMatch(/\bHGMMA\./);  // e.g. HGMMA.64x128x16.F32.BF16 (format not verified here: no cuobjdump)
  });

  it.each(["gemm_test.cu", "attention_test.cu", "ssm_test.cu", "tma_test.cu", "ssm_bwd_test.cu", "matmul_test.cu", "attention_bwd_test.cu", "train_ops_test.cu"])("the GPU harness tests/gpu/%s still compiles against the library (to PTX)", { timeout: 300_000 }, async (file) => {
    const src = readFileSync(path.join(HERE, "..", "gpu", file), "utf8");
    // no cuBLAS headers on CI: the harness's cuBLAS comparison compiles out
    const r = await cachedNvcc(src, [INCLUDE_DIR], ["-ptx", "-std=c++17", "-O3", "-DSTRATA_NO_CUBLAS", "-gencode", "arch=compute_90a,code=sm_90a", "-o", "out.ptx"], `GPU harness ${file}`);
    expect(readFileSync(path.join(r.dir, "out.ptx"), "utf8")).toMatch(/\.entry\s/);
  });

  it("the emitted sm_80 GEMM uses mma.sync and no wgmma", { timeout: 300_000 }, async () => {
    const k = gemm("sm_80");
    const b = await build(k.source, "sm_80", k.name);
    const body = entries(b.ptx, "gemm_mma_kernel").join("\n");
    expect(body).toMatch(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32/);
    expect(body).toMatch(/ldmatrix\.sync\.aligned\.m8n8\.x4\.shared\.b16/);
    expect(b.ptx).not.toMatch(/wgmma/);
  });
});
