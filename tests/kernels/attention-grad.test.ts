/**
 * The attention_grad family on the CPU: the three attentionGrad nodes of one attention (wrt q, k,
 * v) become one group; `check` explains what the kernels do not take; render reads q/k/v in place
 * (slices of a fused projection), writes unneeded gradients to scratch, asks for the row-statistics
 * scratch; the emitted sources compile with nvcc for sm_90a (no spills) and sm_80. The numerics
 * are checked on the GPU by tests/gpu/attention_bwd_test.cu.
 */
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { graphNodes, type Graph } from "../../compiler/ir/graph.js";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { fuse } from "../../compiler/passes/fuse.js";
import { familyModule, type KernelBody, type RenderContext } from "../../compiler/kernels/index.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { INCLUDE_DIR, KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { KERNEL_EXTRA_FLAGS } from "../../compiler/codegen/build.js";
import { checkNoSpills, compileAll, findNvcc, formatSpills, type NvccArch } from "../../compiler/nvcc/driver.js";
import tinyTransformer from "../../examples/tiny-transformer.js";

const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `s_${n.key.slice(0, 8)}` };
const ctxFor = (arch: RenderContext["arch"]): RenderContext => ({ ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch });

const inp = (name: string, dtype: Node["dtype"], shape: Node["shape"]) => mkNode("input", [], { name }, { dtype, shape: [...shape] });

/**
 * GQA attention on a fused [B, T, (H + 2Hk)·D] projection input, loss = mean(o²), differentiated
 * wrt the projection (all three gradients) or wrt a separate kv input only (dk, dv).
 */
function attentionTraining(H: number, Hk: number, D: number, o: { kvOnly?: boolean; dtype?: Node["dtype"]; scale?: number } = {}): Graph {
  const dt = o.dtype ?? "bf16";
  const view = (x: Node, start: number, heads: number) =>
    mkNode("reshape", [mkNode("slice", [x], { axis: 2, start: start * D, end: (start + heads) * D })], { shape: ["B", "T", heads, D] });
  let q: Node, k: Node, v: Node;
  if (o.kvOnly) {
    const qx = inp("qx", dt, ["B", "T", H * D]);
    const kv = inp("kv", dt, ["B", "T", 2 * Hk * D]);
    q = mkNode("reshape", [qx], { shape: ["B", "T", H, D] });
    k = view(kv, 0, Hk);
    v = view(kv, Hk, Hk);
  } else {
    const qkv = inp("qkv", dt, ["B", "T", (H + 2 * Hk) * D]);
    q = view(qkv, 0, H);
    k = view(qkv, H, Hk);
    v = view(qkv, H + Hk, Hk);
  }
  const att = mkNode("attention", [q, k, v], { scale: o.scale ?? 1 / Math.sqrt(D) });
  const loss = mkNode("reduceMean", [mkNode("square", [mkNode("cast", [att], { to: "f32" })])]);
  return autodiff({ name: `attn_h${H}_kv${Hk}_d${D}`, outputs: { loss }, meta: {} } as Graph, { loss: "loss", wrt: o.kvOnly ? ["kv"] : ["qkv"] });
}

const gradGroups = (g: Graph) => fuse(g).groups.filter((grp) => grp.kind === "attention_grad");

describe("attention_grad family: grouping and rendering", () => {
  it("the three gradients of one attention are one group (roles dq, dk, dv) with three outputs", () => {
    const g = attentionTraining(4, 2, 64);
    expect(graphNodes(g).filter((n) => n.op === "attentionGrad").length).toBe(3);
    const groups = gradGroups(g);
    expect(groups.length).toBe(1);
    const grp = groups[0]!;
    expect(grp.nodes.map((n) => n.attrs.wrt).sort()).toEqual(["k", "q", "v"]);
    expect(Object.keys(grp.roles).sort()).toEqual(["dk", "dq", "dv", "gy", "k", "q", "v"]);
    expect(grp.outputs.length).toBe(3);
  });

  it("a whole-number softmax scale (e.g. 1: no scaling) renders as a C++ float literal in the forward and the backward", () => {
    const g = attentionTraining(4, 2, 64, { scale: 1 });
    const fwd = fuse(g).groups.find((grp) => grp.kind === "attention")!;
    for (const kb of [familyModule("attention_grad").render(gradGroups(g)[0]!, ctxFor("sm_90a")), familyModule("attention").render(fwd, ctxFor("sm_90a"))]) {
      expect(kb.body).toMatch(/p\.scale = 1\.0f;/);
      expect(kb.body).not.toMatch(/[^.\w]1f\b/);
    }
  });

  it("every attention layer of the tiny transformer's training graph is one group", () => {
    const fwd = tinyTransformer.toGraph();
    const g = autodiff(withTrainingLoss(fwd, { weighted: true }), { loss: "loss" });
    const layers = graphNodes(g).filter((n) => n.op === "attention").length;
    const groups = gradGroups(g);
    expect(layers).toBeGreaterThan(0);
    expect(groups.length).toBe(layers);
    for (const grp of groups) expect(grp.nodes.length).toBe(3);
    // head dim 32: the scalar path
    const kb = familyModule("attention_grad").render(groups[0]!, ctxFor("sm_90a"));
    expect(kb.tiles.path).toBe("scalar");
    expect(kb.body).toContain("attention_bwd_launch_simple<32>");
  });

  it("render reads q/k/v in place from the fused projection and asks for 8·H bytes per token of statistics scratch", () => {
    const [grp] = gradGroups(attentionTraining(8, 2, 128));
    const kb = familyModule("attention_grad").render(grp!, ctxFor("sm_90a"));
    expect(kb.template).toBe("attention_grad.cu.hbs");
    expect(kb.tiles).toMatchObject({ headDim: 128, path: "mma" });
    const rs = (8 + 4) * 128;
    expect(kb.body).toContain(`p.q_row_stride = ${rs}; p.k_row_stride = ${rs}; p.v_row_stride = ${rs};`);
    expect(kb.body).toMatch(new RegExp(`p\\.k = p\\d+ \\+ ${8 * 128};`));
    expect(kb.body).toMatch(new RegExp(`p\\.v = p\\d+ \\+ ${10 * 128};`));
    expect(kb.body).toContain("p.H = 8; p.Hk = 2;");
    expect(kb.body).toContain("attention_bwd_launch<128>(p, stream)");
    expect(kb.scratch?.map((s) => [s.bytesPerToken, s.fixedBytes])).toEqual([[8 * 8, 0]]);
  });

  it("a gradient the graph does not read goes to launch scratch (dq when only k, v are differentiated)", () => {
    const [grp] = gradGroups(attentionTraining(4, 4, 64, { kvOnly: true }));
    expect(grp!.nodes.map((n) => n.attrs.wrt).sort()).toEqual(["k", "v"]);
    const kb = familyModule("attention_grad").render(grp!, ctxFor("sm_90a"));
    expect(kb.scratch?.map((s) => s.bytesPerToken)).toEqual([4 * 64 * 2, 8 * 4]);
    expect(kb.body).toContain("p.dq_row_stride = 256;");
  });

  it("check says what the kernels do not take", () => {
    const at = (H: number, Hk: number, D: number, dtype: Node["dtype"] = "bf16", S: Node["shape"][number] = "T", scale = 0.125) => {
      const q = inp("q", dtype, ["B", "T", H, D]);
      const k = inp("k", dtype, ["B", S, Hk, D]);
      const v = inp("v", dtype, ["B", S, Hk, D]);
      const gy = inp("gy", dtype, ["B", "T", H, D]);
      return mkNode("attentionGrad", [gy, q, k, v], { wrt: "q", scale });
    };
    const check = familyModule("attention_grad").check!;
    expect(check(at(4, 2, 64))).toBeUndefined();
    expect(check(at(4, 2, 128))).toBeUndefined();
    expect(check(at(4, 2, 32))).toBeUndefined(); // scalar path
    const d48 = check(at(4, 2, 48));
    expect(d48?.message).toMatch(/head dim 48 is not supported/);
    expect(d48?.hint).toMatch(/64 or 128/);
    expect(check(at(4, 2, 64, "f32"))?.message).toMatch(/must be bf16.*got f32/);
    expect(check(at(4, 2, 64, "bf16", "P+T"))?.message).toMatch(/keys must span the queries/);
    expect(check(at(4, 2, 64, "bf16", "T", -1))?.message).toMatch(/scale must be a positive number/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("attention_grad family: the emitted sources compile (nvcc)", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-attention-grad-test-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  for (const arch of ["sm_90a", "sm_80"] as const) {
    it(`${arch}: head dims 64 and 128 (tensor cores), 32 (scalar), GQA and MHA${arch === "sm_90a" ? ", no spills" : ""}`, { timeout: 600_000 }, async () => {
      const bodies = new Map<string, KernelBody>();
      for (const g of [attentionTraining(4, 2, 64), attentionTraining(8, 2, 128), attentionTraining(4, 4, 64, { kvOnly: true }), attentionTraining(2, 1, 32)])
        for (const grp of gradGroups(g)) {
          const kb = familyModule("attention_grad").render(grp, ctxFor(arch));
          bodies.set(kb.body, kb);
        }
      expect(new Set([...bodies.values()].map((kb) => kb.tiles.path))).toEqual(new Set(["mma", "scalar"]));
      const units = [...bodies.values()].map((kb, i) => {
        const name = `attention_grad_${arch}_${i}`;
        return { name, template: kb.template, source: kb.body.replaceAll(KERNEL_NAME, name) };
      });
      const results = await compileAll(units, { arch: arch as NvccArch, includeDirs: [INCLUDE_DIR], extraFlags: KERNEL_EXTRA_FLAGS, outDir: path.join(work, arch), jobs: 2 });
      expect(results.length).toBe(units.length);
      if (arch === "sm_90a") expect(formatSpills(checkNoSpills(results))).toEqual([]);
    });
  }
});
