/**
 * The staged GEMM epilogue (gemm.cuh PpConfig<…, 8, true>, compiler/kernels/gemm.ts renderVec4):
 * the 8B hybrid's GEMMs whose epilogue reads a per-token tensor (the residual adds) on ping-pong
 * 128×128 tiles take it, with the 4-wide interface rendered next to store2; plain stores keep the
 * fragment store (measured faster there: tests/gpu/gemm_test.cu).
 */
import { describe, expect, it } from "vitest";
import { emitProject } from "../../compiler/codegen/project.js";
import { layer, model, ops as op, stack } from "../../compiler/dsl/index.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";

describe("staged GEMM epilogue", () => {
  const gemms = emitProject(hybrid8b).kernels.filter((k) => k.spec.template === "gemm.cu.hbs");

  it("residual-add GEMMs on ping-pong 128×128 tiles are staged, with the 4-wide interface", () => {
    const staged = gemms.filter((k) => k.source.includes("PpConfig<128, 128, 6, 8, true>"));
    expect(staged.length).toBeGreaterThan(0);
    for (const k of staged) {
      expect(k.source).toContain("static void store4(");
      expect(k.source).toContain("static Pre pre4(");
      expect(k.source).toContain("static bool vec4_ok(");
      expect((k.spec.tiles as Record<string, unknown>).epilogue).toBe("staged");
      // the same chain as store2, element by element: a per-token operand is read in both
      expect(k.source).toMatch(/st::ld\(p\.p\d+ \+ \(long long\)row \*/);
      expect(k.source).toMatch(/q\.a0 = \*reinterpret_cast<const uint2\*>\(p\.p\d+ \+ \(long long\)row \*/);
    }
  });

  it("an epilogue that reads two or more per-token tensors keeps the fragment store (the staged one spills there)", () => {
    // a layer (W_o·x + b) · silu(W_g·x) under the stack's residual add, on 128×128 ping-pong tiles:
    // the gate and the residual are both per-token operands of the second GEMM's epilogue; the same
    // layer without the gate reads the residual only and is staged
    const build = (gated: boolean) => {
      const mix = layer("mix", {}, (ctx, x) => {
        const d = ctx.config.dModel;
        const h = op.add(op.linear(x, ctx.param("wo.weight", [d, d], ctx.outInit())), ctx.param("bo.bias", [d], ctx.inInit()));
        if (!gated) return h;
        return op.mul(h, op.silu(op.linear(x, ctx.param("wg.weight", [d, d], ctx.inInit()))));
      });
      const def = model({ name: gated ? "epi-gated" : "epi-residual", vocab: 256, dModel: 1024, seqLen: 4096, layers: stack({ pattern: "XX", X: mix }) });
      return emitProject(def, { maxBatch: 4, maxSeq: 4096, maxTokens: 16384, maxContext: 4096 }).kernels.filter((k) => k.spec.template === "gemm.cu.hbs");
    };
    const staged = (ks: ReturnType<typeof build>) => ks.filter((k) => k.source.includes(", 8, true>"));
    const gated = build(true);
    expect(gated.some((k) => (k.source.match(/st::ld\(/g) ?? []).length >= 2 && k.source.includes("PpConfig<128, 128, 6>"))).toBe(true);
    expect(staged(gated)).toEqual([]);
    expect(staged(build(false)).length).toBeGreaterThan(0);
  });

  it("GEMMs with a plain store keep the fragment store", () => {
    const plain = gemms.filter((k) => !/st::ld\(/.test(k.source));
    expect(plain.length).toBeGreaterThan(0);
    for (const k of plain) {
      expect(k.source).not.toContain(", 8, true>");
      expect(k.source).not.toContain("store4");
    }
  });
});
