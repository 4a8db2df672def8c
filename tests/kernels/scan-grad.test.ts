/**
 * The scan-backward families on the CPU: grouping of the training graph's ssdScanGrad /
 * selectiveScanGrad nodes (every gradient of one scan in one group), their `check` messages, the
 * rendered launchers (scratch, strides, requested gradients only) and an nvcc compile of the
 * emitted sources for sm_90a (no spills) and sm_80, and host emulations of pieces of the kernels
 * (scan_grad_host.cu, sscan_grad_host.cu). The numerics are checked on the GPU by
 * tests/gpu/ssm_bwd_test.cu.
 */
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { mamba, mamba2, model, stack } from "../../compiler/dsl/index.js";
import { graphNodes, type Graph } from "../../compiler/ir/graph.js";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { fuse } from "../../compiler/passes/fuse.js";
import { familyModule, type KernelBody, type RenderContext } from "../../compiler/kernels/index.js";
import { ssdGradGroupPath, ssdGradScratch } from "../../compiler/kernels/ssd-grad.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { INCLUDE_DIR, KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, type NvccArch } from "../../compiler/nvcc/driver.js";

const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `s_${n.key.slice(0, 8)}` };
const ctxFor = (arch: RenderContext["arch"]): RenderContext => ({ ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch });

function training(layer: "mamba2" | "mamba", dtype: "bf16" | "f32" = "bf16", dState = 16): Graph {
  const M = layer === "mamba2" ? mamba2({ dState: 64, headDim: 64, groups: 2, expand: 4, dConv: 4, chunk: 64 }) : mamba({ dState, expand: 2 });
  const m = model({ name: `t-${layer}`, vocab: 64, dModel: 128, seqLen: 64, dtype, layers: stack({ pattern: "MM", M }) });
  return autodiff(withTrainingLoss(m.toGraph(), { weighted: true }), { loss: "loss" });
}

const GRAD_OPS = { ssd_grad: "ssdScanGrad", selective_scan_grad: "selectiveScanGrad" } as const;

function scanGradBodies(g: Graph, arch: RenderContext["arch"]): KernelBody[] {
  const plan = fuse(g);
  const ctx = ctxFor(arch);
  return plan.groups.filter((grp) => grp.kind === "ssd_grad" || grp.kind === "selective_scan_grad").map((grp) => familyModule(grp.kind).render(grp, ctx));
}

describe.each(["mamba2", "mamba"] as const)("%s training graph: the scan's gradients", (layer) => {
  const kind = layer === "mamba2" ? "ssd_grad" : "selective_scan_grad";
  const g = training(layer);
  const plan = fuse(g);
  const grads = graphNodes(g).filter((n) => n.op === GRAD_OPS[kind]);

  it("every gradient of one scan is in one group, one group per layer", () => {
    const groups = plan.groups.filter((grp) => grp.kind === kind);
    expect(groups.length).toBe(2);
    expect(grads.length).toBeGreaterThanOrEqual(10);
    for (const n of grads) expect(groups.map((x) => x.id)).toContain(plan.groupOf.get(n.key));
    for (const grp of groups) {
      const wrts = grp.nodes.map((n) => n.attrs.wrt as string).sort();
      expect(wrts).toEqual(layer === "mamba2" ? ["A", "B", "C", "dt", "x"] : ["A", "B", "C", "delta", "u"]);
      expect(new Set(grp.nodes.map((n) => n.inputs.map((i) => i.key).join())).size).toBe(1);
    }
  });

  it("renders one launcher with scratch and every gradient's output", () => {
    const bodies = scanGradBodies(g, "sm_90a");
    expect(bodies.length).toBe(2);
    for (const kb of bodies) {
      expect(kb.scratch?.length).toBe(1);
      expect(kb.scratch![0]!.bytesPerToken).toBeGreaterThan(0);
      expect(kb.body).toContain(layer === "mamba2" ? "strata::ssd_bwd::ssd_grad<64, 64>(p, scratch_bytes, stream)" : "strata::sscan_bwd::selective_scan_grad<16>(p, scratch_bytes, stream)");
      expect(kb.body).toMatch(/p\.dA = p\d+;/);
      expect(kb.body).toContain("p.dh0 = nullptr;");
      expect(kb.body).not.toMatch(/p\.(dx|du|ddt|ddelta|dB|dC) = \{\};/);
      expect(kb.body).toMatch(/\(long long\)T \* \d+\}/); // symbolic batch strides
    }
  });
});

describe("ssd_grad scratch (include/ssd_bwd.cuh ssd_grad_scratch_per_token / _fixed)", () => {
  it("the group path keeps chunk states only; shapes off it add per-head dB / dC partials", () => {
    // values printed by the header's constexpr functions for H = 8 (nvcc, host)
    expect(ssdGradScratch(8, 64, 64)).toEqual({ perToken: 4129, fixed: 264224 });
    expect(ssdGradScratch(8, 64, 128)).toEqual({ perToken: 8225, fixed: 526368 });
    expect(ssdGradScratch(8, 128, 32)).toEqual({ perToken: 4129, fixed: 264224 });
    expect(ssdGradGroupPath(64, 176)).toBe(true);
    expect(ssdGradGroupPath(48, 48)).toBe(false); // no warp tiling: the CUDA-core path
    expect(ssdGradScratch(8, 48, 48)).toEqual({ perToken: 5409, fixed: 149536 });
    expect(ssdGradGroupPath(64, 192)).toBe(false); // the group tiles exceed shared memory
    expect(ssdGradScratch(8, 64, 192).perToken).toBe(24609);
  });
  it("the rendered launcher reserves the group path's scratch", () => {
    const bodies = scanGradBodies(training("mamba2"), "sm_90a");
    for (const kb of bodies) expect(kb.scratch![0]!.bytesPerToken).toBe(ssdGradScratch(8, 64, 64).perToken); // heads = 4·128 / 64
  });
});

describe.each([64, 128])("mamba training graph with dState %i: the selective-scan backward", (N) => {
  const g = training("mamba", "bf16", N);
  it("one group per layer, rendered with the kernel for that dState and its scratch", () => {
    const bodies = scanGradBodies(g, "sm_90a");
    expect(bodies.length).toBe(2);
    const D = 256; // expand 2 × dModel 128
    for (const kb of bodies) {
      expect(kb.body).toContain(`strata::sscan_bwd::selective_scan_grad<${N}>(p, scratch_bytes, stream)`);
      // chunk-start states every 16 tokens + per-token dB / dC partials of the blocks of 16 channels
      expect(kb.scratch![0]!.bytesPerToken).toBe((D * N * 4) / 16 + 2 * (D / 16) * N * 4);
      expect(kb.scratch![0]!.fixedBytes).toBe(3 * D * N * 4 + 8 * 256);
    }
  });
});

describe("check: what the scan-backward kernels do not take", () => {
  const inp = (name: string, dtype: Node["dtype"], shape: Node["shape"]) => mkNode("input", [], { name }, { dtype, shape: [...shape] });
  it("ssd_grad: head dim / state size and shared memory", () => {
    const mk = (P: number, N: number, adt: Node["dtype"] = "f32") =>
      mkNode("ssdScanGrad", [inp("gy", "bf16", ["B", "T", 4, P]), inp("x", "bf16", ["B", "T", 4, P]), inp("dt", "f32", ["B", "T", 4]), inp("A", adt, [4]), inp("b", "bf16", ["B", "T", 2, N]), inp("c", "bf16", ["B", "T", 2, N])], { wrt: "x" });
    expect(familyModule("ssd_grad").check!(mk(64, 128))).toBeUndefined();
    expect(familyModule("ssd_grad").check!(mk(64, 16))).toBeUndefined();
    expect(familyModule("ssd_grad").check!(mk(40, 64))?.message).toMatch(/multiples of 16/);
    const big = familyModule("ssd_grad").check!(mk(128, 128));
    expect(big?.message).toMatch(/shared memory/);
    expect(big?.hint).toMatch(/headDim 64/);
    expect(familyModule("ssd_grad").check!(mk(64, 64, "bf16"))?.message).toMatch(/A must be f32/);
  });
  it("selective_scan_grad: dState", () => {
    const mk = (N: number) =>
      mkNode("selectiveScanGrad", [inp("gy", "bf16", ["B", "T", 64]), inp("u", "bf16", ["B", "T", 64]), inp("d", "f32", ["B", "T", 64]), inp("A", "f32", [64, N]), inp("b", "bf16", ["B", "T", N]), inp("c", "bf16", ["B", "T", N])], { wrt: "u" });
    for (const N of [8, 16, 32, 64, 128]) expect(familyModule("selective_scan_grad").check!(mk(N))).toBeUndefined();
    const v = familyModule("selective_scan_grad").check!(mk(48));
    expect(v?.message).toMatch(/dState 8, 16, 32, 64 or 128 \(got 48\)/);
    expect(v?.hint).toMatch(/dState: 16/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("scan-backward families: the emitted sources compile (nvcc)", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-scan-grad-test-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  for (const arch of ["sm_90a", "sm_80"] as const) {
    it(`${arch}: ssd_grad and selective_scan_grad (bf16 and f32 models, dState 16, 64, 128) with no spills`, { timeout: 600_000 }, async () => {
      const bodies = new Map<string, KernelBody>();
      const graphs = [training("mamba2"), training("mamba"), training("mamba2", "f32"), training("mamba", "f32"), training("mamba", "bf16", 64), training("mamba", "bf16", 128)];
      for (const g of graphs) for (const kb of scanGradBodies(g, arch)) bodies.set(kb.body, kb);
      for (const N of [16, 64, 128]) expect([...bodies.keys()].some((b) => b.includes(`selective_scan_grad<${N}>(`))).toBe(true);
      expect(new Set([...bodies.values()].map((kb) => kb.template))).toEqual(new Set(["ssd_grad.cu.hbs", "selective_scan_grad.cu.hbs"]));
      const units = [...bodies.values()].map((kb, i) => {
        const name = `scan_grad_${arch}_${i}`;
        return { name, template: kb.template, source: kb.body.replaceAll(KERNEL_NAME, name) };
      });
      const results = await compileAll(units, { arch: arch as NvccArch, includeDirs: [INCLUDE_DIR], extraFlags: KERNEL_EXTRA_FLAGS, outDir: path.join(work, arch), jobs: 2 });
      expect(results.length).toBe(units.length);
      const spills = formatSpills(checkNoSpills(results));
      // sm_80: the selective-scan backward is held to no spills (the SSD backward only on sm_90a)
      expect(arch === "sm_90a" ? spills : spills.filter((x) => x.includes("sscan_bwd"))).toEqual([]);
    });
  }
});

describe.skipIf(!nvcc)("selective_scan_bwd.cuh on the host (nvcc, no GPU)", () => {
  it("the launch emulated block by block (dState 16, 64, 128) matches the float64 reference, bit-identical run to run", { timeout: 120_000 }, async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), "strata-sscan-grad-host-"));
    try {
      const src = fileURLToPath(new URL("./sscan_grad_host.cu", import.meta.url));
      const exe = path.join(work, "sscan_grad_host");
      await execa(nvcc!, ["-std=c++17", "-I", INCLUDE_DIR, src, "-o", exe]);
      const r = await execa(exe, [], { reject: false });
      for (const N of [16, 64, 128]) expect(r.stdout).toContain(`PASS N=${N} B=2 T=37 D=20: bit-identical`);
      expect(r.stdout).toContain("0 failed");
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!nvcc)("ssd_bwd.cuh state passing on the host (nvcc, no GPU)", () => {
  it("pass_chunks (loads kInFlight chunks ahead) is bit-identical to the plain recurrence", { timeout: 120_000 }, async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), "strata-scan-grad-host-"));
    try {
      const src = fileURLToPath(new URL("./scan_grad_host.cu", import.meta.url));
      const exe = path.join(work, "scan_grad_host");
      await execa(nvcc!, ["-std=c++17", "-I", INCLUDE_DIR, src, "-o", exe]);
      const r = await execa(exe, [], { reject: false });
      expect(r.stdout).toContain("0 failed");
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
