/**
 * Fewer launches per decode step, in the cached schedule:
 * - decode prologues (fuse.ts `decodePrologues`, gemm.ts `decodePrologue`, row.ts
 *   `renderRowPrologue`): a norm whose one value is read only by the next GEMM is computed by that
 *   GEMM's GEMV at ≤ 8 rows, and its row kernel is skipped then;
 * - decode steps (gemm.ts `decodeStep`, conv1d.ts `renderConvStep`, cache-append.ts
 *   `renderCacheStep`): the conv1d, or the K/V cache appends, after a small projection run per
 *   column pair in the GEMV's store, their kernel skipped at ≤ 8 rows;
 * - the K and V cache appends of one attention are one launch (fuse.ts step 5).
 * The IR is unchanged (the interpreter's semantics are the graph's), so what is checked here is
 * the plan: which groups are taken, which are not and why, that the values involved stay live
 * while the GEMM writes, that the forward and train schedules are untouched, and the launchers.
 */
import { describe, expect, it } from "vitest";
import { attention, mamba2, mlp, model, stack } from "../../compiler/dsl/index.js";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { emitProject } from "../../compiler/codegen/project.js";
import { storageBase, isSource, isNorm } from "../../compiler/ir/registry.js";
import { deriveStep } from "../../compiler/passes/derive-step.js";
import { fuse } from "../../compiler/passes/fuse.js";
import { DECODE_STEP_MAX_WEIGHTS } from "../../compiler/kernels/gemm.js";
import { compileProgram } from "../../compiler/pipeline.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyMamba2 from "../../examples/tiny-mamba2.js";
import tinyTransformer from "../../examples/tiny-transformer.js";

const cachedPlan = (m: ModelDef, decodePrologues = true) => fuse(deriveStep(m.toGraph(), { tokens: "T" }).step, { decodePrologues });

describe("decode prologues in the cached graph", () => {
  it("tiny-hybrid: every pre-norm, the final norm and both gated norms go into the GEMV that reads them", () => {
    const p = cachedPlan(tinyHybrid);
    const skipped = p.groups.filter((g) => g.skipAtDecode && g.kind === "row");
    // 5 layer pre-norms + the final norm + the gated RMSNorm of each of the 2 Mamba-2 layers
    expect(skipped).toHaveLength(8);
    expect(skipped.filter((g) => g.nodes.some((n) => n.op === "gatedRmsnorm"))).toHaveLength(2);
    p.groups.forEach((g, i) => {
      if (!g.skipAtDecode || g.kind !== "row") return;
      const next = p.groups[i + 1]!;
      expect(next.kind).toBe("gemm");
      expect(next.prologue).toBe(g);
      expect(next.anchor!.inputs[0]).toBe(g.outputs[0]);
      expect(g.nodes.filter(isNorm)).toHaveLength(1);
    });
    // every GEMM with a prologue has a skipped producer
    for (const g of p.groups) if (g.prologue) expect(g.prologue.skipAtDecode).toBe(true);
    const taken = p.decisions.filter((d) => d.what.startsWith("decode prologue") && d.accepted);
    expect(taken).toHaveLength(8);
  });

  it("off unless asked for (the forward and train schedules)", () => {
    const p = cachedPlan(tinyHybrid, false);
    expect(p.groups.some((g) => g.skipAtDecode || g.prologue)).toBe(false);
    expect(fuse(tinyHybrid.toGraph()).groups.some((g) => g.skipAtDecode || g.prologue)).toBe(false);
  });

  it("a conv after a projection of more than DECODE_STEP_MAX_WEIGHTS weights keeps its kernel, with the reason logged", () => {
    const big = model({ name: "big", vocab: 64, dModel: 2048, seqLen: 16, layers: stack({ pattern: "M", M: mamba2({ dState: 128, headDim: 64, groups: 8, expand: 2, chunk: 64 }) }) });
    const p = cachedPlan(big);
    const conv = p.groups.find((g) => g.kind === "conv1d")!;
    expect(conv.skipAtDecode).toBeFalsy();
    const d = p.decisions.find((x) => x.what.startsWith("decode step") && !x.accepted)!;
    expect(d.reason).toContain(`over ${DECODE_STEP_MAX_WEIGHTS} elements`);
    // the small tiny one is taken
    const t = cachedPlan(tinyMamba2);
    expect(t.groups.filter((g) => g.kind === "conv1d" && g.skipAtDecode)).toHaveLength(3);
    for (const g of t.groups) if (g.decodeStep) expect(g.decodeStep.skipAtDecode).toBe(true);
  });

  it("the conv step's output is live from its GEMM on (the GEMV writes it), never sharing bytes with what the GEMM reads", () => {
    for (const m of [tinyHybrid, tinyMamba, tinyMamba2]) {
      const prog = compileProgram(m, { maxBatch: 2, maxSeq: 32 });
      const s = prog.schedules.find((x) => x.name === "cached")!;
      const slotOf = new Map(s.memory.slots.map((x) => [x.key, x]));
      s.plan.groups.forEach((g, gi) => {
        if (!g.decodeStep) return;
        for (const o of g.decodeStep.outputs) {
          const sl = slotOf.get(o.key);
          if (!sl) continue;  // the conv state: a persistent buffer
          expect(sl.from, `${m.config.name}: ${o.op}`).toBeLessThanOrEqual(gi);
          for (const n of [...g.nodes, ...(g.prologue?.nodes ?? [])])
            for (const i of n.inputs) {
              const r = slotOf.get(storageBase(i).key);
              if (!r || r === sl) continue;
              const live = r.from <= sl.to && sl.from <= r.to;
              const overlap = r.offset < sl.offset + sl.bytes && sl.offset < r.offset + r.bytes;
              expect(live && overlap, `${m.config.name}: the conv output shares bytes with ${i.op}`).toBe(false);
            }
        }
      });
    }
  });

  it("a row wider than 2048 columns (the row kernel's block would have more threads than the GEMV's) keeps its kernel, with the reason logged", () => {
    const wide = model({ name: "wide", vocab: 64, dModel: 4096, seqLen: 16, layers: stack({ pattern: "-", "-": mlp({ hidden: 256, act: "relu2" }) }) });
    const p = cachedPlan(wide);
    expect(p.groups.some((g) => g.skipAtDecode || g.prologue)).toBe(false);
    const why = p.decisions.filter((d) => d.what.startsWith("decode prologue") && !d.accepted);
    expect(why.length).toBeGreaterThan(0);
    expect(why[0]!.reason).toContain("4096 columns takes 512 threads");
  });

  it("a norm whose value has a second reader is not taken", () => {
    // attention without a pre-norm fused elsewhere: the norm's value feeds only the QKV GEMM, so
    // it is taken; check that a value read twice never is (the invariant, over the examples)
    for (const m of [tinyHybrid, tinyMamba, tinyMamba2, tinyTransformer]) {
      const p = cachedPlan(m);
      for (const g of p.groups) {
        if (!g.prologue) continue;
        const v = g.prologue.outputs[0]!;
        const readers = p.groups.filter((x) => x.nodes.some((n) => n.inputs.some((i) => storageBase(i) === v)));
        expect(readers).toEqual([g]);
      }
    }
  });

  it("the prologue's reads stay live while its GEMM writes (no slot of theirs is the GEMM's output)", () => {
    for (const m of [tinyHybrid, tinyMamba2, tinyTransformer]) {
      const prog = compileProgram(m, { maxBatch: 2, maxSeq: 32 });
      const s = prog.schedules.find((x) => x.name === "cached")!;
      const slotOf = new Map(s.memory.slots.map((x) => [x.key, x]));
      s.plan.groups.forEach((g, gi) => {
        if (!g.prologue) return;
        const out = slotOf.get(g.outputs[0]!.key)!;
        for (const n of g.prologue.nodes)
          for (const i of n.inputs) {
            const b = storageBase(i);
            const sl = slotOf.get(b.key);
            if (isSource(b) || !sl || g.prologue.nodes.includes(b)) continue;
            expect(sl.to, `${m.config.name}: ${b.op} read by the prologue of group ${g.id}`).toBeGreaterThanOrEqual(gi);
            const overlap = sl.offset < out.offset + out.bytes && out.offset < sl.offset + sl.bytes;
            expect(overlap, `${m.config.name}: ${b.op} shares bytes with the GEMM's output`).toBe(false);
          }
      });
    }
  });
});

describe("decode prologues in the emitted project", () => {
  const count = (m: ModelDef) => {
    const p = emitProject(m, { maxBatch: 2, maxSeq: 32, maxContext: 64 });
    const kernels = new Map(p.kernels.map((k) => [k.name, k]));
    const sched = (name: string) => p.program.schedules.find((s) => s.name === name)!;
    const real = (name: string) => sched(name).launches.filter((l) => l.kind === "kernel" && !l.once);
    const skipped = (name: string) => real(name).filter((l) => l.kind === "kernel" && kernels.get(l.kernel)!.spec.tiles.skipAtDecode === true);
    return { p, kernels, real, skipped };
  };

  it("tiny-hybrid: 11 of the step's 26 launches (27 before K and V shared one) do nothing at ≤ 8 rows; the forward schedule is unchanged", () => {
    const { kernels, real, skipped } = count(tinyHybrid);
    expect(real("cached")).toHaveLength(26);
    expect(skipped("cached")).toHaveLength(11);
    expect(skipped("forward")).toHaveLength(0);
    for (const l of real("forward"))
      if (l.kind === "kernel") expect(kernels.get(l.kernel)!.source).not.toMatch(/struct Pro|struct Post|return cudaSuccess;  \/\/|kMaxRows\) return cudaSuccess/);
    // the launchers: the row kernel returns before launching, the GEMM takes the GEMV with its prologue
    for (const l of skipped("cached")) if (l.kind === "kernel") expect(kernels.get(l.kernel)!.source).toMatch(/if \((rows|B \* T|d->B \* T) <= strata::gemv::kMaxRows\) return cudaSuccess;/);
    expect(skipped("cached").filter((l) => l.kind === "kernel" && l.kernel.startsWith("cache_append"))).toHaveLength(1);
    expect(skipped("cached").filter((l) => l.kind === "kernel" && l.kernel.startsWith("conv1d"))).toHaveLength(2);
    const withPro = [...kernels.values()].filter((k) => /gemv_launch<Epi, Pro[,>]/.test(k.source));
    // in_proj, QKV, fc1, lm_head and out_proj (gated norm) GEMMs, de-duplicated by body
    expect(withPro.length).toBeGreaterThanOrEqual(4);
    for (const k of withPro) {
      expect(k.source).toContain("st::row_stats<");
      expect(k.spec.tiles.decodePrologue).toBeTruthy();
    }
  });

  it("the other tiny families: pre-norms and the final norm, Mamba-2's gated norms, the convs", () => {
    expect(count(tinyMamba).skipped("cached")).toHaveLength(4 + 3);
    expect(count(tinyMamba2).skipped("cached")).toHaveLength(7 + 3);
    expect(count(tinyTransformer).skipped("cached")).toHaveLength(5);
  });

  it("the conv step: in the in_proj GEMV's store, reading its own column slice back, the state updated in place", () => {
    const { kernels } = count(tinyMamba2);
    const k = [...kernels.values()].find((x) => x.source.includes("struct Post {"))!;
    expect(k.spec.tiles.decodeStep).toBe("conv1d+silu+convState");
    expect(k.source).toContain("gemv_launch<Epi, Pro, Post>");
    expect(k.source).toContain("int T;  // tokens per sequence");
    expect(k.source).toContain("strata::fast_silu(a)");
  });

  it("the cache step: the QKV GEMV copies K and V into the caches at row P (from the device in a graph replay)", () => {
    const { kernels } = count(tinyHybrid);
    const k = [...kernels.values()].find((x) => x.spec.tiles.decodeStep === "cacheAppend+cacheAppend")!;
    expect(k.source).toContain("const int P = p.P_dev ? p.P_dev[0] : p.P_host;");
    expect(k.source).toContain("T, d->dev, d->P, d->C };");
    expect(k.source).toContain("if (M <= strata::gemv::kMaxRows && !(d->dev || d->P + T <= d->C)) return cudaErrorInvalidValue;");
    // the Transformer's K goes through rope (a row kernel) first: its appends keep their launch
    expect(count(tinyTransformer).skipped("cached").filter((l) => l.kind === "kernel" && l.kernel.startsWith("cache_append"))).toHaveLength(0);
  });

  it("K and V are appended by one launch (the attention reads both); the Transformer's step has one per layer", () => {
    for (const m of [tinyHybrid, tinyTransformer]) {
      const { kernels, real } = count(m);
      const appends = real("cached").filter((l) => l.kind === "kernel" && l.kernel.startsWith("cache_append"));
      const attn = real("cached").filter((l) => l.kind === "kernel" && l.kernel.startsWith("attention"));
      expect(appends).toHaveLength(attn.length);
      for (const l of appends) if (l.kind === "kernel") {
        expect(l.buffers.filter((b) => b.kind === "state")).toHaveLength(2);
        expect(kernels.get(l.kernel)!.source).toContain("dim3(d->B * T, 2)");
      }
    }
  });

  it("a hand-built attention + Mamba-2 model", () => {
    const m = model({
      name: "am",
      vocab: 64,
      dModel: 256,
      seqLen: 16,
      layers: stack({ pattern: "*M", "*": attention({ heads: 4, kvHeads: 2, headDim: 64 }), M: mamba2({ dState: 64, headDim: 64, groups: 1, expand: 2, chunk: 64 }) }),
    });
    // 2 pre-norms, the final norm, the gated norm, the conv, the K/V appends (no rope)
    expect(count(m).skipped("cached")).toHaveLength(6);
  });
});
