/**
 * The training-op kernel families (reduce, cross_entropy, embedding_grad, conv1d_grad) on the CPU:
 * how fusion groups the tiny examples' training graphs, what each family renders (mode, scratch,
 * fused work), the shapes `check` refuses (with a hint), and — with nvcc, no GPU — that every
 * kernel they emit for the tiny examples compiles for sm_90a and sm_80 with no spills and no
 * warnings; and the emitted kernels' generated part (the fused functors, their index arithmetic,
 * the launchers' buffer wiring and scratch sizes) run on the CPU through a host stand-in of
 * train_ops.cuh against the interpreter's float64 values. The device algorithms run on the GPU:
 * tests/gpu/train_ops_test.cu and tests/gpu/train_ops_emitted_test.cu (see their headers).
 * The token reductions' vectorized pass 1 (8 columns per thread, 16-byte loads) is checked on the
 * CPU against the scalar pass bit for bit: for every emitted case (the stand-in runs both and
 * compares each Src8 element and each partial), and, for the tiny examples' token reductions and
 * hand-built groups (broadcast operands read per element, views off 16-byte alignment, a column
 * count not a multiple of 8), with base pointers off 16-byte alignment, which must fall back to
 * the scalar pass and give the same bytes.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { FAMILIES, type FusionGroup, type KernelBody } from "../../compiler/kernels/index.js";
import { columnTiling } from "../../compiler/kernels/reduce.js";
import type { Dim } from "../../compiler/ir/dims.js";
import { featureCount } from "../../compiler/codegen/tensors.js";
import { INCLUDE_DIR, KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, type CompileUnit } from "../../compiler/nvcc/driver.js";
import { execa } from "execa";
import { fusedTraining, namedSource, renderAll, renderContext, TINY, type Rendered } from "./train-helpers.js";
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
    // the token reductions whose columns allow it took the vector pass, bit-identical to the scalar one
    expect(r.all!.match(/^VEC column_sums_vec .* bit-identical/gm)?.length ?? 0, r.all).toBeGreaterThanOrEqual(8);
  });
});

// ---- the vectorized column pass: aligned vs misaligned base pointers, bit for bit ---------------

describe.skipIf(!nvcc)("token reductions: the vectorized pass 1 on the CPU (host stand-in) against the scalar pass", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-reduce-vec-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const B = 2, T = 150;  // 300 rows: two full 128-row chunks and a partial one
  const inp = (name: string, shape: Dim[], dtype: Node["dtype"] = "bf16") => mkNode("input", [], { name }, { dtype, shape });
  const par = (name: string, shape: number[], dtype: Node["dtype"] = "bf16") => mkNode("param", [], { name, init: { kind: "zeros" } }, { dtype, shape });
  const group = (nodes: Node[]): FusionGroup => ({ id: 0, kind: "reduce", anchor: nodes[nodes.length - 1]!, nodes, outputs: [nodes[nodes.length - 1]!], roles: {} });

  /** Hand-built groups: [name, group, vectorized?, vector loads in Src8, per-element loads in Src8]. */
  const handBuilt = (): [string, FusionGroup, boolean, number, number][] => {
    const x = inp("x", ["B", "T", 8, 64]), g = inp("g", ["B", "T", 8, 1], "f32"), w = par("w", [8, 64]);
    const xg = mkNode("mul", [x, g]), xgw = mkNode("mul", [xg, w]);
    const p = inp("p", ["B", "T", 200], "f32"), q = inp("q", ["B", "T", 128]);
    const ps = mkNode("slice", [p], { axis: 2, start: 3, end: 131 }), pq = mkNode("mul", [ps, q]);
    const pa = mkNode("slice", [p], { axis: 2, start: 4, end: 132 }), pa2 = mkNode("mul", [pa, pa]);
    const r = inp("r", ["B", "T", 96]), rs = mkNode("slice", [r], { axis: 2, start: 5, end: 93 });
    const u = inp("u", ["B", "T", 100]), uu = mkNode("mul", [u, u]);
    return [
      ["x·g·w → [8, 64] (g per element, w a weight)", group([xg, xgw, mkNode("sumTo", [xgw], { shape: [8, 64] })]), true, 2, 1],
      ["x·g·w → [8, 1] (8 heads of 64 columns)", group([xg, xgw, mkNode("sumTo", [xgw], { shape: [8, 1] })]), true, 2, 1],
      ["slice(p f32, 3)·q → [128] (p off alignment: per element)", group([pq, mkNode("sumTo", [pq], { shape: [128] })]), true, 1, 1],
      ["slice(p f32, 4)² → [128] (f32 at a 16-byte offset)", group([pa2, mkNode("sumTo", [pa2], { shape: [128] })]), true, 1, 0],
      ["slice(r, 5) → [88] (no operand vector-loadable)", group([mkNode("sumTo", [rs], { shape: [88] })]), false, 0, 0],
      ["u² → [100] (columns not a multiple of 8)", group([uu, mkNode("sumTo", [uu], { shape: [100] })]), false, 0, 0],
    ];
  };

  it("aligned runs take the vector pass, misaligned ones the scalar pass; every buffer bit-identical", { timeout: 600_000 }, async () => {
    const ctx = renderContext();
    const rows = B * T;
    const cases: { name: string; kb: KernelBody; g: FusionGroup; vec: boolean }[] = [];
    const seen = new Set<string>();
    for (const [model, rs] of Object.entries(rendered))
      for (const r of rs) {
        if (r.group.kind !== "reduce" || !r.body || r.body.tiles.mode !== "tokens" || seen.has(r.body.body)) continue;
        seen.add(r.body.body);
        cases.push({ name: `${model} ${ops(r.group).join("→")} [${r.group.anchor!.inputs[0]!.shape}]→[${r.group.anchor!.shape}]`, kb: r.body, g: r.group, vec: r.body.tiles.vectorized === true });
      }
    expect(cases.filter((c) => c.vec).length).toBeGreaterThanOrEqual(8);
    for (const [name, g, vec, loads, perElement] of handBuilt()) {
      const kb = FAMILIES.reduce.render(g, ctx);
      expect(kb.tiles.vectorized, name).toBe(vec);
      const src8 = kb.body.match(/struct Src8 \{[\s\S]*?\n\};/)?.[0] ?? "";
      expect(src8.match(/st::ld8\(/g)?.length ?? 0, name).toBe(loads);
      expect(src8.match(/st::ld\(/g)?.length ?? 0, name).toBe(perElement);
      cases.push({ name: `hand-built ${name}`, kb, g, vec });
    }
    // bytes per buffer: the largest tensor a case touches (row stride and offset included), or its scratch
    const elems = (n: Node, out: boolean) => {
      const ref = out ? ctx.outRef(n) : ctx.ref(n);
      return (ref.tokenDims ? rows * ref.rowStride : 0) + ref.offset + featureCount(ref);
    };
    const sources: string[] = [];
    const table: string[] = [];
    cases.forEach((c, i) => {
      let bytes = 0;
      for (const n of c.g.nodes) {
        bytes = Math.max(bytes, 4 * elems(n, true));
        for (const x of n.inputs) if (!c.g.nodes.includes(x) && x.op !== "full") bytes = Math.max(bytes, 4 * elems(x, false));
      }
      for (const sc of c.kb.scratch ?? []) bytes = Math.max(bytes, sc.bytesPerToken * rows + sc.fixedBytes);
      const body = c.kb.body.replaceAll(KERNEL_NAME, `case${i}`).split("\n").filter((l) => !l.startsWith("#include")).join("\n");
      sources.push(`namespace ns_case${i} {\n${body}\n}  // namespace ns_case${i}`);
      table.push(`  {${JSON.stringify(c.name)}, ns_case${i}::launch_case${i}, ${c.kb.buffers.length}, ${bytes}LL, ${c.vec ? 1 : 0}},`);
    });
    writeFileSync(
      path.join(work, "reduce_vec.inc"),
      `#include <cuda_runtime.h>\n#include "train_ops.cuh"\n#include "strata_launch.cuh"\n\n${sources.join("\n\n")}\n\n` +
        `struct VecCase { const char* name; cudaError_t (*launch)(void* const*, const StrataDims*, cudaStream_t); int nbuf; long long bytes; int vec; };\n` +
        `static const int kVecB = ${B}, kVecT = ${T};\nstatic const VecCase kVecCases[] = {\n${table.join("\n")}\n};\n`,
    );
    const here = path.dirname(new URL(import.meta.url).pathname);
    const src = readFileSync(path.join(here, "train_ops_host", "reduce_vec_test.cpp"), "utf8");
    const b = await cachedNvcc(src, [work, path.join(here, "train_ops_host"), INCLUDE_DIR], ["-x", "c++", "-std=c++17", "-O2", "-o", "reduce_vec_test"], "reduce_vec_test");
    const r = await execa(path.join(b.dir, "reduce_vec_test"), [], { reject: false, all: true });
    expect(r.all).not.toMatch(/^FAIL/m);
    expect(r.all).toMatch(new RegExp(`^${cases.length} passed, 0 failed`, "m"));
    expect(r.all!.match(/^VEC column_sums_vec .* bit-identical/gm)?.length ?? 0, r.all).toBe(cases.filter((c) => c.vec).length);
    expect(r.exitCode, r.all).toBe(0);
  });
});
