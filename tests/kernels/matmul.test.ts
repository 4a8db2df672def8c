/**
 * The matmul family on the CPU: fusion of the training graph's GEMMs (each weight gradient —
 * matmul(gyᵀ, x) → sumTo → cast — is one group; each dgrad linear(gy, transpose(W)) is routed to
 * the matmul kernel), rendering of the three paths (dgrad, wgrad, general batched), and an nvcc
 * compile of the emitted sources for sm_90a (no spills) and sm_80. The numerics are checked on
 * the GPU by tests/gpu/matmul_test.cu.
 */
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { graphNodes, type Graph } from "../../compiler/ir/graph.js";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { fuse } from "../../compiler/passes/fuse.js";
import { familyModule, type KernelBody, type RenderContext } from "../../compiler/kernels/index.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { INCLUDE_DIR, KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, type NvccArch } from "../../compiler/nvcc/driver.js";

const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `s_${n.key.slice(0, 8)}` };
const ctxFor = (arch: RenderContext["arch"]): RenderContext => ({ ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch });

import { extraGraphs, mlpTraining } from "./matmul-graphs.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";

const isWgrad = (n: Node) => n.op === "matmul" && n.inputs[0]!.op === "transpose";
const isDgrad = (n: Node) => n.op === "linear" && n.inputs[1]!.op === "transpose";

/** Every matmul-family body of a graph (dgrad linears included), for `arch`. */
function renderMatmuls(g: Graph, arch: RenderContext["arch"]): KernelBody[] {
  const plan = fuse(g);
  const ctx = ctxFor(arch);
  return plan.groups.filter((grp) => grp.kind === "matmul" || (grp.kind === "gemm" && isDgrad(grp.anchor!))).map((grp) => familyModule(grp.kind).render(grp, ctx));
}

describe("matmul family: fusion of the training graph", () => {
  const g = mlpTraining();
  const plan = fuse(g);
  const groupOf = (n: Node) => plan.groups.find((gr) => gr.id === plan.groupOf.get(n.key))!;
  const nodes = graphNodes(g);
  const outs = new Set(Object.entries(g.outputs).filter(([k]) => k.startsWith("grad.")).map(([, n]) => n.key));

  it("each weight gradient is one matmul group (matmul → sumTo → cast), its output the f32 grad", () => {
    const wgrads = nodes.filter(isWgrad);
    expect(wgrads.length).toBe(3);
    for (const mm of wgrads) {
      const grp = groupOf(mm);
      expect(grp.kind).toBe("matmul");
      expect(grp.anchor).toBe(mm);
      expect(grp.nodes.map((n) => n.op)).toEqual(["matmul", "sumTo", "cast"]);
      expect(grp.outputs.length).toBe(1);
      expect(grp.outputs[0]!.dtype).toBe("f32");
      expect(outs.has(grp.outputs[0]!.key)).toBe(true);
    }
  });

  it("each dgrad linear(gy, transpose(W)) passes the GEMM check and renders the matmul kernel", () => {
    const dgrads = nodes.filter(isDgrad);
    expect(dgrads.length).toBe(2);
    // the ReLU derivative reads the stored pre-activation (per token): a row kernel applies it, not the store
    for (const lin of dgrads) expect(groupOf(lin).nodes.map((n) => n.op)).toEqual(["linear"]);
    for (const n of nodes.filter((m) => m.op === "activationGrad")) expect(groupOf(n).kind).toBe("row");
    const ctx = ctxFor("sm_90a");
    for (const lin of dgrads) {
      const grp = groupOf(lin);
      expect(grp.kind).toBe("gemm");
      expect(familyModule("gemm").check!(lin)).toBeUndefined();
      const kb = familyModule("gemm").render(grp, ctx);
      expect(kb.template).toBe("matmul.cu.hbs");
      expect(kb.tiles.path).toBe("dgrad");
      expect(kb.body).toMatch(/matmul_launch<strata::gemm::WsConfig<128, 256, 4>, __nv_bfloat16, __nv_bfloat16, false, true, Epi>/);
    }
  });

  for (const [name, def] of Object.entries({ "tiny-transformer": tinyTransformer, "tiny-mamba": tinyMamba, "tiny-hybrid": tinyHybrid })) {
    it(`${name}: every weight gradient is one group, every dgrad renders the matmul kernel, no dgrad store reads a per-token tensor`, () => {
      const tg = autodiff(withTrainingLoss(def.toGraph(), { weighted: true }), { loss: "loss" });
      const tplan = fuse(tg);
      const ctx = ctxFor("sm_90a");
      const linearWeights = new Set(graphNodes(tg).filter((n) => n.op === "linear" && n.inputs[1]!.op === "param").map((n) => n.inputs[1]!.key));
      const paths: Record<string, number> = {};
      let fusedDerivative = 0;
      for (const grp of tplan.groups) {
        if (!(grp.kind === "matmul" || (grp.kind === "gemm" && isDgrad(grp.anchor!)))) continue;
        const kb = familyModule(grp.kind).render(grp, ctx);
        paths[kb.tiles.path as string] = (paths[kb.tiles.path as string] ?? 0) + 1;
        if (kb.tiles.path === "wgrad") expect(grp.nodes.map((n) => n.op)).toEqual(["matmul", "sumTo", "cast"]);
        if (kb.tiles.path === "dgrad" && grp.nodes.slice(1).some((n) => n.inputs.some((o) => !grp.nodes.includes(o) && o.shape[0] === "B"))) fusedDerivative++;
      }
      expect(paths.wgrad).toBe(linearWeights.size);
      expect(paths.dgrad).toBeGreaterThan(2);
      expect(paths.general).toBeUndefined();
      expect(fusedDerivative).toBe(0); // relu2′ (transformer MLP) / silu′ (Mamba gate) run in row kernels
    });
  }

  it("wgrad renders one launch contracting over B·T tokens with MN-major operands and an f32 store", () => {
    const kb = renderMatmuls(mlpTraining(), "sm_90a").find((k) => k.tiles.path === "wgrad")!;
    // these small weights (one output tile) split the tokens: partials in launch scratch
    expect(kb.body).toMatch(/matmul_launch_split<[^>]*>, __nv_bfloat16, __nv_bfloat16, true, true, Epi>\(p\d+ \+ 0, \d+, p\d+ \+ 0, \d+, \d+, \d+, B \* T, ep, splits, p\d+, stream\)/);
    expect(kb.tiles.maxSplits).toBe(8);
    expect(kb.scratch).toEqual([{ name: "@scratch0", bytesPerToken: 0, fixedBytes: 8 * Number(/matmul_splits<[^>]*>>\((\d+), (\d+)/.exec(kb.body)!.slice(1, 3).reduce((a, b) => String(Number(a) * Number(b)))) * 4 }]);
    expect(kb.body).toContain("strata::store_f32x2(");
    expect(kb.body).toContain("(long long)row * ");
  });

  it("a large weight's gradient (≥ one wave of output tiles) is one plain launch, no scratch", () => {
    const inp = (name: string, n: number) => mkNode("input", [], { name }, { dtype: "bf16", shape: ["B", "T", n] });
    const mm = mkNode("matmul", [mkNode("transpose", [inp("gy", 4096)], { perm: [0, 2, 1] }), inp("x", 2048)]);
    const dw = mkNode("cast", [mkNode("sumTo", [mm], { shape: [4096, 2048] })], { to: "f32" });
    const [kb] = renderMatmuls({ name: "big", outputs: { dw }, meta: {} } as Graph, "sm_90a");
    expect(kb!.tiles.path).toBe("wgrad");
    // 4096 × 2048: 32 × 8 tiles of 128×256 fill two waves (the wave model's pick: 128×128 would take four of half the work, at a lower rate)
    expect(kb!.body).toContain("matmul_launch<strata::gemm::WsConfig<128, 256, 4>, __nv_bfloat16, __nv_bfloat16, true, true, Epi>(");
    expect(kb!.scratch).toBeUndefined();
  });

  it("a matmul that is not a weight gradient takes the general kernel (transposed views, symbolic strides)", () => {
    const [general, f32wgrad] = extraGraphs();
    const [kb] = renderMatmuls(general!, "sm_90a");
    expect(kb!.tiles.path).toBe("general");
    expect(kb!.body).toContain("matmul_general_launch<__nv_bfloat16, __nv_bfloat16, Epi>");
    expect(kb!.body).toMatch(/const float e\d+ = acc;\n\s*st::st\(p\.p\d+ \+ oc, e\d+\);/); // the cast to f32 fused into the store
    const [kw] = renderMatmuls(f32wgrad!, "sm_90a");
    expect(kw!.tiles.path).toBe("wgrad");
    expect(kw!.body).toContain("float, __nv_bfloat16, true, true, Epi>");
  });

  it("check explains what the tensor-core path needs", () => {
    const x = mkNode("input", [], { name: "x" }, { dtype: "bf16", shape: ["B", "T", 12] });
    const w = mkNode("param", [], { name: "w" }, { dtype: "bf16", shape: [12, 20] });
    const lin = mkNode("linear", [x, mkNode("transpose", [w], { perm: [1, 0] })]);
    expect(familyModule("gemm").check!(lin)?.message).toMatch(/multiples of 8/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("matmul family: the emitted sources compile (nvcc)", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-matmul-test-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  for (const arch of ["sm_90a", "sm_80"] as const) {
    it(`${arch}: dgrad, wgrad and general kernels compile${arch === "sm_90a" ? " with no spills" : ""}`, { timeout: 600_000 }, async () => {
      const bodies = new Map<string, KernelBody>();
      for (const g of [mlpTraining(), ...extraGraphs()]) for (const kb of renderMatmuls(g, arch)) bodies.set(kb.body, kb);
      // the examples' dgrads with an epilogue chain (casts)
      for (const def of [tinyTransformer, tinyMamba]) {
        const tg = autodiff(withTrainingLoss(def.toGraph(), { weighted: true }), { loss: "loss" });
        for (const kb of renderMatmuls(tg, arch)) if (kb.tiles.path === "dgrad" && kb.group.nodes.length > 2) bodies.set(kb.body, kb);
      }
      const paths = new Set([...bodies.values()].map((kb) => kb.tiles.path));
      expect([...paths].sort()).toEqual(["dgrad", "general", "wgrad"]);
      const units = [...bodies.values()].map((kb, i) => {
        const name = `matmul_${arch}_${i}`;
        return { name, template: kb.template, source: kb.body.replaceAll(KERNEL_NAME, name) };
      });
      const results = await compileAll(units, { arch: arch as NvccArch, includeDirs: [INCLUDE_DIR], extraFlags: KERNEL_EXTRA_FLAGS, outDir: path.join(work, arch), jobs: 2 });
      expect(results.length).toBe(units.length);
      if (arch === "sm_90a") expect(formatSpills(checkNoSpills(results))).toEqual([]);
    });
  }
});
