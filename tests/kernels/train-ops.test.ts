/**
 * The training-op kernel families (reduce, cross_entropy, embedding_grad, conv1d_grad) on the CPU:
 * how fusion groups the tiny examples' training graphs, what each family renders (mode, scratch,
 * fused work), the shapes `check` refuses (with a hint), and — with nvcc, no GPU — that every
 * kernel they emit for the tiny examples compiles for sm_90a and sm_80 with no spills and no
 * warnings; and the emitted kernels' generated part (the fused functors, their index arithmetic,
 * the launchers' buffer wiring and scratch sizes) run on the CPU through a host stand-in of
 * train_ops.cuh against the interpreter's float64 values. The device algorithms run on the GPU:
 * tests/gpu/train_ops_test.cu and tests/gpu/train_ops_emitted_test.cu (see their headers).
 */
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { FAMILIES, type FusionGroup, type KernelBody } from "../../compiler/kernels/index.js";
import { columnTiling } from "../../compiler/kernels/reduce.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, type CompileUnit } from "../../compiler/nvcc/driver.js";
import { execa } from "execa";
import { fusedTraining, namedSource, renderAll, TINY, type Rendered } from "./train-helpers.js";
import { emitTrainOps } from "../gpu/train_ops_emit.js";
import { cachedNvcc } from "../device/host-build.js";

const MINE = new Set(["reduce", "cross_entropy", "embedding_grad", "conv1d_grad"]);

const fused = Object.fromEntries(Object.entries(TINY).map(([name, def]) => [name, fusedTraining(def)]));
const rendered: Record<string, Rendered[]> = Object.fromEntries(Object.entries(fused).map(([name, f]) => [name, renderAll(f.plan)]));
const ops = (g: FusionGroup) => g.nodes.map((n) => n.op);

describe.each(Object.keys(TINY))("%s: training-op groups", (name) => {
  const { plan } = fused[name]!;
  const mine = rendered[name]!.filter((r) => MINE.has(r.group.kind));

  it("every group of the four families renders", () => {
    expect(mine.length).toBeGreaterThan(5);
    for (const r of mine) expect(r.error?.message, `${r.group.kind} group ${r.group.id} (${ops(r.group).join(", ")})`).toBeUndefined();
  });

  it("the loss and its gradient over the logits are one cross-entropy launch", () => {
    const ce = plan.groups.filter((g) => g.kind === "cross_entropy");
    expect(ce).toHaveLength(1);
    expect(ops(ce[0]!)).toEqual(["crossEntropy", "crossEntropyGrad"]);
    const kb = mine.find((r) => r.group === ce[0])!.body!;
    expect(kb.tiles).toMatchObject({ loss: true, grad: true });
    expect(kb.body).toContain("cross_entropy_rows<__nv_bfloat16, float, __nv_bfloat16>");
  });

  it("the embedding gradient is one deterministic scatter-add with integer scratch", () => {
    const eg = mine.filter((r) => r.group.kind === "embedding_grad");
    expect(eg).toHaveLength(1);
    const kb = eg[0]!.body!;
    expect(kb.scratch).toHaveLength(1);
    const V = eg[0]!.group.anchor!.shape[0] as number;
    expect(kb.scratch![0]).toMatchObject({ bytesPerToken: 4, fixedBytes: (3 * V + 1) * 4 });
    expect(kb.body).toMatch(/int\* p\d+ = static_cast<int\*>/);
  });

  it("the conv1d gradients of one conv (dx and dw) share a launch, dw through chunk partials", () => {
    const convs = plan.groups.filter((g) => g.kind === "conv1d_grad");
    const nConv = plan.groups.filter((g) => g.kind === "conv1d").length;
    expect(convs.length).toBe(nConv);
    for (const g of convs) {
      expect(g.nodes.map((n) => n.attrs.wrt).sort()).toEqual(["w", "x"]);
      const kb = mine.find((r) => r.group === g)!.body!;
      expect(kb.scratch).toHaveLength(1);
      expect(kb.body).toMatch(/p\.dx = p\d+;/);
      expect(kb.body).toMatch(/p\.dw = p\d+;/);
    }
  });

  it("token reductions use column partials in scratch; row sums one warp per output; the loss mean divides by B·T", () => {
    const red = mine.filter((r) => r.group.kind === "reduce");
    for (const r of red) {
      const a = r.group.anchor!;
      const kb = r.body!;
      const x = a.inputs[0]!.shape;
      if (a.op === "expandTo") {
        expect(kb.tiles.mode).toBe("expand");
        continue;
      }
      const o = [...new Array(x.length - a.shape.length).fill(1), ...a.shape];
      const tokens = x[0] === "B" && x[1] === "T" && (a.op === "reduceMean" || (o[0] === 1 && o[1] === 1));
      expect(kb.tiles.mode, `${a.op} [${x}] → [${a.shape}]`).toBe(tokens ? "tokens" : "warp");
      if (tokens) {
        expect(kb.scratch).toHaveLength(1);
        const cols = (x.slice(2) as number[]).reduce((p, d) => p * d, 1);
        expect(kb.tiles.rowsPerChunk).toBe(columnTiling(cols).rowsPerChunk);
        expect(kb.scratch![0]!.fixedBytes).toBe(cols * 4);
      } else expect(kb.scratch ?? []).toHaveLength(0);
      if (a.op === "reduceMean") expect(kb.body).toContain("(float)((double)B * (double)T");
    }
    // the weighted loss: two means over [B, T], Σ w·CE with the product fused
    const means = red.filter((r) => r.group.anchor!.op === "reduceMean");
    expect(means).toHaveLength(2);
    expect(means.some((r) => ops(r.group).join() === "mul,reduceMean")).toBe(true);
  });

  it("norm backward row sums absorb their elementwise producers (nothing stored for them)", () => {
    const rowSums = mine.filter((r) => r.group.anchor?.op === "sumTo" && r.group.anchor.shape[r.group.anchor.shape.length - 1] === 1 && r.group.anchor.shape[0] === "B");
    expect(rowSums.length).toBeGreaterThan(0);
    for (const r of rowSums) {
      const before = r.group.nodes.slice(0, r.group.nodes.indexOf(r.group.anchor!));
      for (const p of before) expect(r.group.outputs).not.toContain(p);
    }
    expect(rowSums.some((r) => ops(r.group)[0] === "square" || ops(r.group)[0] === "mul")).toBe(true);
  });
});

describe("what the families refuse, with a hint", () => {
  const inp = (name: string, dtype: Node["dtype"], shape: Node["shape"]) => mkNode("input", [], { name }, { dtype, shape: [...shape] });
  it("reduce: an expandTo that keeps only one token axis", () => {
    const x = inp("x", "f32", ["B", 1, 4]);
    const e = mkNode("expandTo", [x], { shape: ["B", "T", 4] });
    expect(FAMILIES.reduce.check!(e)?.message).toMatch(/whole token axis pair/);
  });
  it("reduce: symbolic feature axes", () => {
    const x = inp("x", "f32", ["B", "T", "T"]);
    const s = mkNode("sumTo", [x], { shape: ["T"] });
    const v = FAMILIES.reduce.check!(s);
    expect(v?.message).toMatch(/token-major/);
    expect(v?.hint).toBeTruthy();
  });
  it("cross_entropy: logits that are not [B, T, V]", () => {
    const l = inp("l", "bf16", [4, 512]);
    const t = inp("t", "i32", [4]);
    const v = FAMILIES.cross_entropy.check!(mkNode("crossEntropy", [l, t]));
    expect(v?.message).toMatch(/\[B, T, V\]/);
    expect(v?.hint).toBeTruthy();
  });
  it("embedding_grad: rows wider than the kernel holds", () => {
    const ids = inp("ids", "i32", ["B", "T"]);
    const gy = inp("gy", "f32", ["B", "T", 20000]);
    const v = FAMILIES.embedding_grad.check!(mkNode("embeddingGrad", [ids, gy], { vocab: 10 }));
    expect(v?.message).toMatch(/20000/);
    expect(v?.hint).toBeTruthy();
  });
  it("conv1d_grad: a kernel size outside 2..8", () => {
    const x = inp("x", "bf16", ["B", "T", 8]);
    const w = mkNode("param", [], { name: "w" }, { dtype: "bf16", shape: [8, 12] });
    const v = FAMILIES.conv1d_grad.check!(mkNode("conv1dGrad", [x, x, w], { wrt: "x" }));
    expect(v?.message).toMatch(/2\.\.8/);
    expect(v?.hint).toBeTruthy();
  });
});

describe("determinism by construction", () => {
  it("train_ops.cuh has no floating-point atomics (only the integer histogram and bucket cursor)", () => {
    const src = readFileSync(path.join(INCLUDE_DIR, "train_ops.cuh"), "utf8").replace(/\/\/.*$/gm, "");
    const atomics = [...src.matchAll(/atomic\w+\(([^,]+),/g)].map((m) => m[1]!.trim());
    expect(atomics.sort()).toEqual(["counts + id", "cursor + id"]);
    expect(src).toMatch(/int\* __restrict__ counts/);
    expect(src).toMatch(/int\* __restrict__ cursor/);
  });
  it("the emitted kernels call no atomics themselves", () => {
    for (const rs of Object.values(rendered)) for (const r of rs) if (MINE.has(r.group.kind) && r.body) expect(r.body.body).not.toMatch(/atomic\w*\(/);
  });
});

// ---- nvcc: every emitted kernel of the four families compiles (sm_90a, sm_80), no spills ---------

const nvcc = findNvcc();

describe.skipIf(!nvcc)("the training-op kernels of the tiny examples compile (nvcc, no GPU)", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-train-ops-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const units = new Map<string, CompileUnit>();
  for (const rs of Object.values(rendered))
    for (const r of rs) {
      if (!MINE.has(r.group.kind) || !r.body) continue;
      const { name, source } = namedSource(r.body as KernelBody);
      units.set(name, { name, template: r.body.template, source });
    }

  it.each(["sm_90a", "sm_80"] as const)("%s: zero spills, no stack frame, no warnings", { timeout: 900_000 }, async (arch) => {
    expect(units.size).toBeGreaterThan(10);
    const results = await compileAll([...units.values()], {
      arch,
      includeDirs: [INCLUDE_DIR],
      extraFlags: KERNEL_EXTRA_FLAGS,
      outDir: path.join(work, arch),
      jobs: Math.max(1, Math.min(2, os.availableParallelism())),
    });
    expect(results.map((r) => r.name).sort()).toEqual([...units.keys()].sort());
    for (const r of results) {
      expect(r.ptxas.filter((p) => p.kind === "entry").length, r.name).toBeGreaterThan(0);
      expect(r.warnings, r.name).toEqual([]);
    }
    expect(formatSpills(checkNoSpills(results))).toEqual([]);
  });
});

describe.skipIf(!nvcc)("the emitted kernels on the CPU (host stand-in of train_ops.cuh) match the interpreter", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-train-ops-host-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("every case within tolerance, no buffer or scratch overrun", { timeout: 600_000 }, async () => {
    const cases = emitTrainOps(work);
    expect(cases).toBeGreaterThan(15);
    const here = path.dirname(new URL(import.meta.url).pathname);
    const src = readFileSync(path.join(here, "train_ops_host_test.cpp"), "utf8");
    const b = await cachedNvcc(src, [work, path.join(here, "train_ops_host"), INCLUDE_DIR], ["-x", "c++", "-std=c++17", "-O2", "-o", "host_test"], "train_ops_host_test");
    const r = await execa(path.join(b.dir, "host_test"), [path.join(work, "data.bin")], { reject: false, all: true });
    expect(r.all).toMatch(new RegExp(`\\d+ passed, 0 failed`));
    expect(r.all).not.toMatch(/^FAIL/m);
    expect(r.exitCode, r.all).toBe(0);
  });
});
