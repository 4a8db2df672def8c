import { describe, expect, it } from "vitest";
import { attention, mamba, mamba2, mlp, model, stack, type LayerDef } from "../../compiler/dsl/index.js";
import { StrataError } from "../../compiler/ir/errors.js";
import { graphNodes } from "../../compiler/ir/graph.js";
import { fillInit } from "../../compiler/interp/interp.js";
import { alloc } from "../../compiler/interp/tensor.js";

/** Line of the caller (same source-mapping as captureUserLoc, so the two agree). */
function lineHere(): number {
  const frame = new Error().stack!.split("\n")[2]!;
  return Number(/:(\d+):\d+\)?\s*$/.exec(frame)![1]);
}

function caught(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (e) {
    if (e instanceof StrataError) return e;
    throw e;
  }
  throw new Error("expected a StrataError");
}

function expectLoc(e: StrataError, line: number): void {
  expect(e.loc?.file).toMatch(/tests\/dsl\/layers\.test\.ts$/);
  expect(e.loc?.line).toBe(line);
  expect(e.message.startsWith(`${e.loc!.file}:${line}:`)).toBe(true);
}

const tiny = (l: LayerDef, dModel = 128) => model({ name: "t", vocab: 64, dModel, seqLen: 8, layers: [l] });

describe("layer option validation", () => {
  it("attention: kvHeads must divide heads (eager)", () => {
    const e = caught(() => attention({ heads: 32, kvHeads: 5 })); const line = lineHere();
    expect(e.message).toContain("attention: kvHeads 5 does not divide heads 32");
    expect(e.hint).toContain("1, 2, 4, 8, 16, 32");
    expectLoc(e, line);
  });

  it("attention: headDim defaults to dModel/heads, which must be whole (against the model)", () => {
    const l = attention({ heads: 3 }); const line = lineHere();
    const e = caught(() => tiny(l));
    expect(e.message).toContain("attention: headDim defaults to dModel/heads = 128/3");
    expect(e.hint).toMatch(/give headDim explicitly/);
    expectLoc(e, line);
  });

  it("attention: rope must rotate an even number of dims", () => {
    const l = attention({ heads: 4, headDim: 30, rope: { fraction: 0.5 } }); const line = lineHere();
    const e = caught(() => tiny(l));
    expect(e.message).toContain("rope rotates headDim·fraction = 30·0.5 = 15 dims");
    expectLoc(e, line);
    expect(() => attention({ heads: 4, rope: { fraction: 1.5 } })).toThrow(/rope.fraction must be in \(0, 1\]/);
  });

  it("mamba2: heads·headDim must equal d_inner (against the model)", () => {
    const l = mamba2({ heads: 100, headDim: 64, groups: 4 }); const line = lineHere();
    const e = caught(() => model({ name: "t", vocab: 64, dModel: 4096, layers: [l] }));
    expect(e.message).toContain("mamba2: heads·headDim = 100·64 = 6400 but d_inner = expand·dModel = 2·4096 = 8192");
    expect(e.hint).toContain("valid headDim values divide 8192");
    expectLoc(e, line);
  });

  it("mamba2: headDim must divide d_inner", () => {
    const l = mamba2({ headDim: 48 }); const line = lineHere();
    const e = caught(() => tiny(l));
    expect(e.message).toContain("mamba2: headDim 48 does not divide d_inner = expand·dModel = 2·128 = 256");
    expect(e.hint).toContain("valid headDim values divide 256");
    expectLoc(e, line);
  });

  it("mamba2: groups must divide the heads", () => {
    const l = mamba2({ headDim: 32, groups: 3 }); const line = lineHere();
    const e = caught(() => tiny(l));
    expect(e.message).toContain("mamba2: groups 3 does not divide heads = d_inner/headDim = 256/32 = 8");
    expect(e.hint).toBe("valid groups: 1, 2, 4, 8");
    expectLoc(e, line);
    const e2 = caught(() => mamba2({ heads: 6, groups: 4 })); const line2 = lineHere();
    expect(e2.message).toContain("mamba2: groups 4 does not divide heads 6");
    expectLoc(e2, line2);
  });

  it("non-integer and non-positive sizes are rejected where they are written", () => {
    const e1 = caught(() => mlp({ hidden: 100.5 })); const l1 = lineHere();
    expect(e1.message).toContain("mlp: hidden must be a positive integer, got 100.5");
    expectLoc(e1, l1);
    const e2 = caught(() => mamba2({ dState: 0 })); const l2 = lineHere();
    expect(e2.message).toContain("mamba2: dState must be a positive integer, got 0");
    expectLoc(e2, l2);
    const e3 = caught(() => attention({ heads: 8, headDim: 12.5 })); const l3 = lineHere();
    expect(e3.message).toContain("attention: headDim must be a positive integer, got 12.5");
    expectLoc(e3, l3);
    const e4 = caught(() => mamba({ dtRank: -4 })); const l4 = lineHere();
    expect(e4.message).toContain("mamba: dtRank must be a positive integer, got -4");
    expectLoc(e4, l4);
    const l5 = mamba({ expand: 1.5 }); const line5 = lineHere();
    const e5 = caught(() => tiny(l5, 65));
    expect(e5.message).toContain("mamba: d_inner = expand·dModel = 1.5·65 = 97.5 is not an integer");
    expectLoc(e5, line5);
  });

  it("unknown options and activations are named with the valid ones", () => {
    // @ts-expect-error: not an activation
    const e = caught(() => mlp({ hidden: 64, act: "tanh" }));
    expect(e.message).toContain("mlp: unknown activation 'tanh'");
    expect(e.hint).toContain('"relu2", "gelu", "swiglu"');
    // @ts-expect-error: misspelt option
    expect(() => mamba2({ dstate: 16 })).toThrow(/mamba2: unknown option 'dstate'[\s\S]*dState/);
  });
});

describe("layer graphs", () => {
  const ops = (l: LayerDef, dModel = 128) => graphNodes(tiny(l, dModel).toGraph()).map((n) => n.op);

  it("mlp: swiglu splits fc1 into gate and up", () => {
    const g = tiny(mlp({ hidden: 96, act: "swiglu" })).toGraph();
    const fc1 = graphNodes(g).find((n) => n.op === "param" && n.attrs.name === "layers.0.mixer.fc1.weight")!;
    expect(fc1.shape).toEqual([192, 128]);
    expect(ops(mlp({ hidden: 96, act: "gelu" }))).toContain("gelu");
  });

  it("attention: GQA, optional rope, scale 1/sqrt(headDim)", () => {
    const g = tiny(attention({ heads: 4, kvHeads: 2, headDim: 16, rope: true })).toGraph();
    const nodes = graphNodes(g);
    const att = nodes.find((n) => n.op === "attention")!;
    expect(att.inputs[0]!.shape).toEqual(["B", "T", 4, 16]);
    expect(att.inputs[1]!.shape).toEqual(["B", "T", 2, 16]);
    expect(att.attrs.scale).toBeCloseTo(0.25);
    expect(nodes.filter((n) => n.op === "rope")).toHaveLength(2);
    expect(ops(attention({ heads: 4 }))).not.toContain("rope");
  });

  it("mamba2 and mamba use their scans with f32 SSM params", () => {
    const g2 = tiny(mamba2({ headDim: 32, groups: 2, dState: 16, chunk: 16 })).toGraph();
    const scan = graphNodes(g2).find((n) => n.op === "ssdScan")!;
    expect(scan.attrs.chunk).toBe(16);
    expect(scan.inputs.map((i) => i.shape)).toEqual([["B", "T", 8, 32], ["B", "T", 8], [8], ["B", "T", 2, 16], ["B", "T", 2, 16]]);
    const g1 = tiny(mamba({ dState: 8 })).toGraph();
    const sel = graphNodes(g1).find((n) => n.op === "selectiveScan")!;
    expect(sel.inputs.map((i) => i.shape)).toEqual([["B", "T", 256], ["B", "T", 256], [256, 8], ["B", "T", 8], ["B", "T", 8]]);
    for (const g of [g1, g2])
      for (const p of graphNodes(g).filter((n) => n.op === "param")) {
        const ssm = /\.(A_log|D|dt_bias|dt_proj\.bias)$/.test(p.attrs.name as string);
        expect(p.dtype, p.attrs.name as string).toBe(ssm ? "f32" : "bf16");
      }
  });

  it("mamba (Mamba-1) A_log uses mamba_ssm's S4D-real init log(1..N) per row; mamba2 keeps log U(1, 16)", () => {
    const aLog = (l: LayerDef) => graphNodes(tiny(l).toGraph()).find((n) => n.op === "param" && n.attrs.name === "layers.0.mixer.A_log")!;
    const a1 = aLog(mamba({ dState: 8 }));
    expect(a1.shape).toEqual([256, 8]);
    expect(a1.attrs.init).toEqual({ kind: "alog_arange", n: 8 });
    expect(aLog(mamba()).attrs.init).toEqual({ kind: "alog_arange", n: 16 }); // default dState
    expect(aLog(mamba2({ headDim: 32 })).attrs.init).toEqual({ kind: "alog_uniform", low: 1, high: 16 });
    // drawn values: every channel row is log(1), ..., log(8), so A = -exp(A_log) = -[1..8]
    const t = alloc([256, 8], "f32");
    fillInit(t, a1.attrs.init, 42, "layers.0.mixer.A_log");
    const row = Array.from({ length: 8 }, (_, k) => Math.fround(Math.log(k + 1)));
    for (const r of [0, 1, 255]) expect([...t.data.subarray(r * 8, r * 8 + 8)]).toEqual(row);
  });

  it("a stack can mix every layer kind", () => {
    const m = model({
      name: "mix",
      vocab: 64,
      dModel: 64,
      layers: stack({ pattern: "MS*-", M: mamba2({ headDim: 16, dState: 8 }), S: mamba({ dState: 4 }), "*": attention({ heads: 4 }), "-": mlp({ hidden: 64 }) }),
    });
    expect(m.toGraph().outputs.logits!.shape).toEqual(["B", "T", 64]);
  });
});
