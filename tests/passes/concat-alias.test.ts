/**
 * In-place concats (passes/concat-alias.ts; on by default, `--no-in-place-concat`): the pieces of a fused
 * projection's gradient are written into the concat's buffer by their own kernels and the
 * concat's copy kernel goes. Checked here without a GPU: which concats qualify, that the pieces
 * tile the concat's row, that the memory plan keeps the concat's buffer live from its first piece
 * and never lets another live value overlap it, and that the pieces' kernels write into it.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { layer, model, ops as op, stack } from "../../compiler/dsl/index.js";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { graphNodes } from "../../compiler/ir/graph.js";
import { aliasConcats } from "../../compiler/passes/concat-alias.js";
import { compileProgram, type Schedule } from "../../compiler/pipeline.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const load = async (f: string) => ((await import(path.join(REPO, "examples", f))) as { default: ModelDef }).default;

const trainOf = (p: { schedules: Schedule[] }) => p.schedules.find((s) => s.name === "train")!;

/** Slots live at the same time never share bytes. */
function expectDisjoint(s: Schedule) {
  const slots = s.memory.slots;
  for (let i = 0; i < slots.length; i++)
    for (let j = i + 1; j < slots.length; j++) {
      const a = slots[i]!, b = slots[j]!;
      if (a.from <= b.to && b.from <= a.to) {
        const apart = a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset;
        expect(apart, `${a.name} [${a.from}, ${a.to}] and ${b.name} [${b.from}, ${b.to}] overlap in the arena`).toBe(true);
      }
    }
}

describe("in-place concats", () => {
  for (const file of ["tiny-mamba2.ts", "tiny-hybrid.ts"]) {
    it(`${file}: the fused projections' gradient concats lose their kernels; the pieces write into the concat's buffer`, async () => {
      const def = await load(file);
      const opts = { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true } as const;
      const plain = trainOf(compileProgram(def, { ...opts, inPlaceConcat: false }));
      const inPlace = trainOf(compileProgram(def, opts));

      // the same fusion plan, then the aliases
      const nodes = graphNodes(plain.graph);
      const { aliases, kept, plan } = aliasConcats(plain.plan, nodes, Object.values(plain.graph.outputs), new Set());
      const concats = new Map<string, { into: (typeof nodes)[number]; pieces: { offset: number; cols: number }[] }>();
      for (const [key, a] of aliases) {
        const piece = nodes.find((n) => n.key === key)!;
        const cols = piece.shape.slice(2).reduce<number>((x, d) => x * (d as number), 1);
        const e = concats.get(a.into.key) ?? { into: a.into, pieces: [] };
        e.pieces.push({ offset: a.offset, cols });
        concats.set(a.into.key, e);
      }
      // two a Mamba-2 layer: the in_proj input's (dz | dxBC | ddt) and the conv input's (dx | dB | dC);
      // one an attention layer: the QKV projection input's dq | dk | dv
      const mamba = def.layers.filter((l) => l.kind === "mamba2").length;
      const attn = def.layers.filter((l) => l.kind === "attention").length;
      expect(mamba).toBeGreaterThan(0);
      expect(concats.size).toBe(2 * mamba + attn);
      expect(kept).toEqual([]);
      for (const { into, pieces } of concats.values()) {
        // the pieces tile the concat's row exactly, in order
        const width = into.shape.slice(2).reduce<number>((x, d) => x * (d as number), 1);
        pieces.sort((a, b) => a.offset - b.offset);
        let at = 0;
        for (const p of pieces) {
          expect(p.offset).toBe(at);
          at += p.cols;
        }
        expect(at).toBe(width);
      }

      // one launch fewer per aliased concat; no concat group left among them
      expect(plan.groups.length).toBe(plain.plan.groups.length - concats.size);
      expect(inPlace.launches.length).toBe(plain.launches.length - concats.size);
      for (const g of inPlace.plan.groups) for (const n of g.nodes) expect(n.op === "concat" && concats.has(n.key)).toBe(false);

      // memory: no slot for a piece; the concat's slot is live from its first piece's group on
      const slotKeys = new Set(inPlace.memory.slots.map((s) => s.key));
      for (const key of aliases.keys()) expect(slotKeys.has(key)).toBe(false);
      const groupIndex = new Map(inPlace.plan.groups.map((g, i) => [g.id, i]));
      for (const { into } of concats.values()) {
        const slot = inPlace.memory.slots.find((s) => s.key === into.key)!;
        expect(slot).toBeDefined();
        for (const [key, a] of aliases) {
          if (a.into !== into) continue;
          const gi = groupIndex.get(inPlace.plan.groupOf.get(key)!)!;
          expect(slot.from).toBeLessThanOrEqual(gi);
          expect(slot.to).toBeGreaterThanOrEqual(gi);
        }
        // the pieces' kernels write into the concat's slot
        const writers = inPlace.launches.filter((l) => l.kind === "kernel" && l.buffers.some((b) => b.kind === "slot" && b.name === slot.name));
        expect(writers.length).toBeGreaterThanOrEqual(2);
      }
      expectDisjoint(plain);
      expectDisjoint(inPlace);
    });
  }

  it("a concat with a piece that must stay where it is (here: state) keeps its kernel, and says why", async () => {
    const def = await load("tiny-mamba2.ts");
    const s = trainOf(compileProgram(def, { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true, inPlaceConcat: false }));
    const nodes = graphNodes(s.graph);
    const all = aliasConcats(s.plan, nodes, Object.values(s.graph.outputs), new Set());
    const [pieceKey, a] = [...all.aliases][0]!;
    const some = aliasConcats(s.plan, nodes, Object.values(s.graph.outputs), new Set([pieceKey]));
    expect(some.kept.map((k) => k.concat)).toEqual([a.into]);
    expect(some.kept[0]!.reason).toMatch(/graph output or state/);
    expect([...some.aliases.values()].some((x) => x.into === a.into)).toBe(false);
    expect(some.plan.groups.length).toBe(all.plan.groups.length + 1);
  });

  it("on by default; --no-in-place-concat keeps every concat's kernel", async () => {
    const def = await load("tiny-mamba2.ts");
    const concatKernels = (inPlaceConcat?: boolean) =>
      trainOf(compileProgram(def, { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true, ...(inPlaceConcat === undefined ? {} : { inPlaceConcat }) })).plan.groups.filter(
        (g) => g.nodes.length === 1 && g.nodes[0]!.op === "concat",
      ).length;
    const off = concatKernels(false);
    expect(off).toBeGreaterThan(0);
    expect(concatKernels()).toBeLessThan(off);
    expect(concatKernels()).toBe(concatKernels(true));
  });

  it("training graphs only: a forward concat of two projections keeps its kernel in the forward and cached programs", () => {
    // the pieces would be forward GEMMs writing through the concat's row stride, a path no GPU run
    // has exercised: the inference schedules keep the copy kernel; the train schedule's concats of
    // backward pieces still alias
    const catmix = layer("catmix", {}, (ctx, x) => {
      const d = ctx.config.dModel;
      const a = op.linear(x, ctx.param("wa.weight", [64, d], ctx.inInit()));
      const b = op.silu(op.linear(x, ctx.param("wb.weight", [64, d], ctx.inInit())));
      return op.linear(op.concat([a, b], 2), ctx.param("wo.weight", [d, 128], ctx.outInit()));
    });
    const def = model({ name: "cat-model", vocab: 256, dModel: 128, seqLen: 64, layers: stack({ pattern: "XX", X: catmix }) });
    const p = compileProgram(def, { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true });
    const concatGroups = (s: Schedule) => s.plan.groups.filter((g) => g.nodes.some((n) => n.op === "concat")).length;
    const inference = p.schedules.filter((s) => s.name !== "train");
    expect(inference.length).toBeGreaterThan(0);
    for (const s of inference) expect(concatGroups(s), s.name).toBeGreaterThan(0);
    const off = compileProgram(def, { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true, inPlaceConcat: false });
    for (const s of inference) expect(concatGroups(s), s.name).toBe(concatGroups(off.schedules.find((o) => o.name === s.name)!));
    expect(concatGroups(trainOf(p))).toBeLessThan(concatGroups(trainOf(off)));
  });
});
