/**
 * The Program (compiler/pipeline.ts): every example compiles to the forward and cached schedules
 * with the prefill and step entries; plan invariants hold on both schedules (no buffer is reused
 * before its last reader, through views and in-place cache writes; every state output reaches its
 * persistent buffer); custom mixers that the old pattern matcher rejected compile; the compiler's
 * import graph has no cycle and the IR depends on nothing above it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { layer, mamba2, model, ops, stack, type ModelDef } from "../../compiler/dsl/index.js";
import { init } from "../../compiler/dsl/init.js";
import { emitProject } from "../../compiler/codegen/project.js";
import { graphNodes } from "../../compiler/ir/graph.js";
import type { Node } from "../../compiler/ir/node.js";
import { isSource, storageBase } from "../../compiler/ir/registry.js";
import { deriveStep } from "../../compiler/passes/derive-step.js";
import { explainFusion, fuse } from "../../compiler/passes/fuse.js";
import { compileProgram, type Program } from "../../compiler/pipeline.js";

const ROOT = path.resolve(__dirname, "../..");
const EXAMPLES = path.join(ROOT, "examples");
const names = readdirSync(EXAMPLES).filter((f) => f.endsWith(".ts") && (f.startsWith("tiny") || f === "mamba2-hybrid-8b.ts" || f === "transformer-8b.ts" || f === "mamba-8b.ts"));
const defs: [string, ModelDef][] = await Promise.all(names.map(async (f) => [f, ((await import(path.join(EXAMPLES, f))) as { default: ModelDef }).default] as [string, ModelDef]));

/** The invariants of one schedule's plans. */
function checkSchedules(p: Program): void {
  for (const s of p.schedules) {
    const slotOf = new Map(s.memory.slots.map((x) => [x.key, x]));
    const prepKeys = new Set(p.preps.map((x) => x.key));
    const groupIndex = new Map(s.plan.groups.map((g, i) => [g.id, i]));
    s.plan.groups.forEach((g, gi) => {
      for (const n of g.nodes)
        for (const i of n.inputs) {
          const base = storageBase(i);
          if (isSource(base) || prepKeys.has(base.key) || g.nodes.includes(base)) continue;
          const slot = slotOf.get(base.key);
          if (slot) {
            // written before this group, and not freed (its bytes reused) before this reader
            expect(slot.from, `${s.name}: ${base.op} read by group ${g.id} before it is written`).toBeLessThan(gi);
            expect(slot.to, `${s.name}: ${base.op}'s slot freed before group ${g.id} reads it`).toBeGreaterThanOrEqual(gi);
          } else {
            // not in the arena: a scan's final state written to its persistent buffer
            const writer = s.plan.groups.find((x) => x.nodes.includes(base));
            expect(writer?.roles.hT, `${s.name}: ${base.op} (${base.key}) has no storage`).toBe(base);
            expect(groupIndex.get(writer!.id)!).toBeLessThan(gi);
          }
        }
    });
    // no two slots whose lifetimes overlap share bytes
    const slots = s.memory.slots;
    for (let a = 0; a < slots.length; a++)
      for (let b = a + 1; b < slots.length; b++) {
        const x = slots[a]!;
        const y = slots[b]!;
        const live = x.from <= y.to && y.from <= x.to;
        const bytes = x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
        expect(live && bytes, `${s.name}: ${x.name} and ${y.name} overlap while both live`).toBe(false);
      }
    expect(s.memory.peakBytes).toBeGreaterThanOrEqual(Math.max(0, ...slots.map((x) => x.offset + x.bytes)));
  }
  // every state the cached graph outputs reaches its persistent buffer: in place (a scan's final
  // state, conv1d's outgoing window, a cache append) or by a copy
  const cached = p.schedules.find((s) => s.name === "cached")!;
  for (const st of p.states) {
    const n = cached.graph.outputs[st.name]!;
    const inPlace = n.op === "cacheAppend" || cached.plan.groups.some((g) => g.roles.hT === n || g.roles.stateOut === n);
    const copied = cached.launches.some((l) => l.kind === "copy" && l.dst.name === st.name);
    expect(inPlace !== copied, `${st.name}: written in place (${inPlace}) xor copied (${copied})`).toBe(true);
  }
}

describe("Program", () => {
  it("finds the examples", () => expect(defs.length).toBeGreaterThanOrEqual(7));

  it.each(defs)("%s: entries forward, prefill and step over the forward and cached schedules; plans are sound", (_f, def) => {
    const e = emitProject(def, { maxBatch: 2, maxSeq: 64, maxContext: 256 });
    const entries = e.manifest.entries as Record<string, { schedule: string; tokens: unknown }>;
    expect(Object.keys(entries)).toEqual(["forward", "prefill", "step"]);
    expect(entries.step!.tokens).toBe(1);
    expect(entries.prefill!.schedule).toBe("cached");
    checkSchedules(e.program);
    // one buffer per state, each with its bytes per sequence (KV caches sized by the context)
    for (const s of e.program.states) {
      expect(s.bytesPerSeq).toBeGreaterThan(0);
      if (s.kind === "k" || s.kind === "v") expect(s.shape[1]).toBe(256);
    }
    // the cached schedule's kernels are the forward's where they render the same (shared weights, shared code)
    const fwdKernels = new Set(e.program.schedules[0]!.launches.flatMap((l) => (l.kind === "kernel" ? [l.kernel] : [])));
    const cachedKernels = new Set(e.program.schedules[1]!.launches.flatMap((l) => (l.kind === "kernel" ? [l.kernel] : [])));
    expect([...cachedKernels].some((k) => fwdKernels.has(k))).toBe(true);
    // model.cu is tables only: no host logic
    expect(e.files["model.cu"]).not.toMatch(/\bclass\b|cudaMalloc|cudaMemcpy/);
  });

  it("a scan and its final state are one kernel launch (no recomputation in the cached graph)", () => {
    const def = defs.find(([f]) => f === "tiny-mamba2.ts")![1];
    const p = compileProgram(def, { maxBatch: 1, maxSeq: 32 });
    const cached = p.schedules.find((s) => s.name === "cached")!;
    const scans = cached.plan.groups.filter((g) => g.kind === "ssd");
    expect(scans.length).toBeGreaterThan(0);
    for (const g of scans) {
      expect(g.roles.hT?.op).toBe("ssdState");
      expect(g.roles.h0?.op).toBe("input");
    }
    expect(graphNodes(cached.graph).filter((n) => n.op === "ssdState")).toHaveLength(scans.length);
  });

  it("fuses the one-token step graph of every tiny example (softplus read by the scan and its state)", () => {
    for (const [f, def] of defs.filter(([f]) => f.startsWith("tiny"))) {
      const { step } = deriveStep(def.toGraph(), { tokens: 1 });
      const plan = fuse(step);
      expect(plan.groups.length, f).toBeGreaterThan(0);
      expect(explainFusion(plan)).not.toMatch(/prologue softplus\(dt\): .*read outside/);
    }
  });
});

describe("custom mixers the old pattern matcher rejected", () => {
  /** A Mamba-2-like mixer with dt = softplus(dt_raw), no bias. */
  const noBias = layer("ssd-no-bias", {}, (ctx, x) => {
    const [b, t] = x.shape;
    const H = 8, P = 64, N = 64;
    const proj = ops.linear(x, ctx.param("in.weight", [H * P + 2 * N + H, 128], init.normal()));
    const [xs, Bs, Cs, dtRaw] = ops.split(proj, 2, [H * P, N, N, H]);
    const A = ops.neg(ops.exp(ctx.param("A_log", [H], init.aLog(), "f32")));
    const y = ops.ssdScan(ops.reshape(xs!, [b!, t!, H, P]), ops.softplus(dtRaw!), A, ops.reshape(Bs!, [b!, t!, 1, N]), ops.reshape(Cs!, [b!, t!, 1, N]), { chunk: 64 });
    return ops.linear(ops.reshape(ops.cast(y, "bf16"), [b!, t!, H * P]), ctx.param("out.weight", [128, H * P], init.normal()));
  });

  it("ssdScan(x, softplus(dt), …) without a bias compiles (the kernel applies softplus, no bias), prefill and step included", () => {
    const def = model({ name: "nobias", vocab: 96, dModel: 128, seqLen: 32, layers: stack({ pattern: "S", S: noBias }) });
    const e = emitProject(def, { maxBatch: 1, maxSeq: 32 });
    for (const s of e.program.schedules) {
      const ssd = s.plan.groups.find((g) => g.kind === "ssd")!;
      expect(ssd.roles.dtBias).toBeUndefined();
      expect(ssd.roles.dtRaw!.op).toBe("slice");
      expect(s.plan.decisions.some((d) => d.group === ssd.id && d.accepted && d.what === "prologue softplus(dt)")).toBe(true);
    }
    const k = e.kernels.find((x) => x.spec.template === "ssd.cu.hbs")!;
    expect(k.source).toContain("p.dt_bias = nullptr;");
    checkSchedules(e.program);
  });

  it("dt that is not softplus(…) is reported at the scan's source line with what the kernel needs", () => {
    const bad = layer("ssd-exp-dt", {}, (ctx, x) => {
      const [b, t] = x.shape;
      const proj = ops.linear(x, ctx.param("in.weight", [64 + 128 + 8, 128], init.normal()));
      const [xs, BC, dtRaw] = ops.split(proj, 2, [64, 128, 8]);
      const [Bs, Cs] = ops.split(BC!, 2, [64, 64]);
      const y = ops.ssdScan(ops.reshape(xs!, [b!, t!, 1, 64]), ops.exp(ops.slice(dtRaw!, 2, 0, 1)), ops.neg(ops.exp(ctx.param("A_log", [1], init.aLog(), "f32"))), ops.reshape(Bs!, [b!, t!, 1, 64]), ops.reshape(Cs!, [b!, t!, 1, 64]));
      return ops.linear(ops.reshape(ops.cast(y, "bf16"), [b!, t!, 64]), ctx.param("out.weight", [128, 64], init.normal()));
    });
    const def = model({ name: "expdt", vocab: 96, dModel: 128, seqLen: 32, layers: stack({ pattern: "S", S: bad }) });
    expect(() => emitProject(def)).toThrow(/program\.test\.ts:\d+:\d+: codegen: ssdScan: the CUDA scan kernels apply softplus to dt .* got exp/);
  });

  it("an op added to the registry, the interpreter and the expression table (mish) fuses into a GEMM epilogue", () => {
    const mishMlp = layer("mish-mlp", {}, (ctx, x) =>
      ops.linear(ops.apply("mish", [ops.linear(x, ctx.param("up.weight", [256, 128], init.normal()))]), ctx.param("down.weight", [128, 256], init.normal())),
    );
    const def = model({ name: "mishy", vocab: 96, dModel: 128, seqLen: 32, layers: stack({ pattern: "X", X: mishMlp }) });
    const e = emitProject(def);
    const up = e.plan.groups.find((g) => g.kind === "gemm" && g.nodes.some((n) => n.op === "mish"));
    expect(up?.nodes.map((n) => n.op)).toEqual(["linear", "mish"]);
    expect(e.kernels.some((k) => k.source.includes("tanhf(st::softplus("))).toBe(true);
  });

  it("mamba2 with a custom chunk compiles for prefill and step", () => {
    const def = model({ name: "m2c", vocab: 96, dModel: 256, seqLen: 32, layers: stack({ pattern: "M", M: mamba2({ dState: 64, headDim: 64, chunk: 128 }) }) });
    checkSchedules(emitProject(def, { maxBatch: 3, maxSeq: 32 }).program);
  });
});

describe("import graph", () => {
  const dir = path.join(ROOT, "compiler");
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".ts")) files.push(p);
    }
  };
  walk(dir);
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const src = readFileSync(f, "utf8");
    const specs = [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms), ...src.matchAll(/^\s*import\s+"(\.[^"]+)"/gm)].map((m) => path.resolve(path.dirname(f), m[1]!.replace(/\.js$/, ".ts")));
    edges.set(f, specs.filter((s) => files.includes(s)));
  }

  it("has no cycle (type-only imports included)", () => {
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const dfs = (f: string, stack: string[]) => {
      state.set(f, 1);
      stack.push(f);
      for (const d of edges.get(f)!) {
        if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => path.relative(dir, x)).join(" → "));
        else if (!state.get(d)) dfs(d, stack);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of files) if (!state.get(f)) dfs(f, []);
    expect(files.length).toBeGreaterThan(30);
    expect(cycles).toEqual([]);
  });

  it("the IR imports nothing outside compiler/ir; the interpreter only the IR", () => {
    for (const [f, deps] of edges) {
      const rel = path.relative(dir, f);
      const outside = (prefix: string) => deps.map((d) => path.relative(dir, d)).filter((d) => !d.startsWith(prefix));
      if (rel.startsWith("ir/")) expect(outside("ir/"), rel).toEqual([]);
      if (rel.startsWith("interp/")) expect(outside("i").filter((d) => !d.startsWith("interp/") && !d.startsWith("ir/")), rel).toEqual([]);
    }
  });
});
