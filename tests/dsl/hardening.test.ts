/**
 * DSL input that reaches paths or generated code is validated where the user wrote it: model
 * names, weight names, stack symbols mapped but never used, and the kernel rules `compile` adds
 * (mamba2's projection width), whose message names the option to change — and following that
 * advice gives a model that emits.
 */
import { describe, expect, it } from "vitest";
import { mamba2, mlp, model, stack, layer, attention } from "../../compiler/dsl/index.js";
import { checkKernelRules, checkModelName, MODEL_NAME_RE } from "../../compiler/dsl/model.js";
import { StrataError } from "../../compiler/ir/errors.js";
import { linear } from "../../compiler/dsl/ops.js";
import { init } from "../../compiler/dsl/init.js";
import { emitProject } from "../../compiler/codegen/project.js";

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

const layers = [mlp({ hidden: 64 })];

describe("model names", () => {
  const bad: [string, string][] = [
    ["../../escaped", "contains '..'"],
    ["", "is empty"],
    ["a\nb", "contains a control character (e.g. a newline)"],
    ["a/b", "contains a path separator"],
    ["a\\b", "contains a path separator"],
    ["-rf", "starts with '-'"],
    [".hidden", "starts with '.'"],
    ["x".repeat(65), "is 65 characters long (at most 64)"],
    ["my model", "contains ' '"],
    ['q"uote', `contains '"'`],
    ["a..b", "contains '..'"],
  ];
  for (const [name, why] of bad)
    it(`rejects ${JSON.stringify(name).slice(0, 24)} at the model() line: ${why}`, () => {
      const e = caught(() => model({ name, vocab: 32, dModel: 16, layers })); const line = lineHere();
      expect(e.loc?.file).toMatch(/tests\/dsl\/hardening\.test\.ts$/);
      expect(e.loc?.line).toBe(line);
      expect(e.message).toContain(`model: name ${JSON.stringify(name)} ${why}`);
      expect(e.hint).toContain("1 to 64 characters from A-Z a-z 0-9 . _ -");
    });

  it("accepts the examples' names and ordinary ones", () => {
    for (const n of ["mamba2-hybrid-8b", "tiny_mamba2", "v1.2", "A", "x".repeat(64)]) {
      expect(checkModelName(n)).toBe(n);
      expect(model({ name: n, vocab: 32, dModel: 16, layers }).config.name).toBe(n);
    }
    expect(MODEL_NAME_RE.test("ok-1")).toBe(true);
  });

  it("a name that is not a string says what it got", () => {
    const e = caught(() => model({ name: 42 as unknown as string, vocab: 32, dModel: 16, layers }));
    expect(e.message).toContain("model: name must be a string, got number");
  });
});

describe("weight names of a custom layer", () => {
  it("a newline or '..' in a param name is rejected when the model is lowered", () => {
    for (const bad of ["w\n#include <evil>", "../w", "a..b", ""]) {
      const l = layer("mine", {}, (ctx, x) => linear(x, ctx.param(bad, [16, 16], init.normal(0.02))));
      const m = model({ name: "custom", vocab: 32, dModel: 16, layers: [l] });
      const e = caught(() => m.toGraph());
      expect(e.message).toContain(`parameter name ${JSON.stringify(bad)} is not valid`);
      expect(e.hint).toContain("letters, digits");
    }
  });
});

describe("stack symbols", () => {
  it("a symbol mapped but never used in a pattern is reported at the stack() line", () => {
    const e = caught(() => stack({ pattern: "MM", M: mlp({ hidden: 32 }), "*": attention({ heads: 2 }) })); const line = lineHere();
    expect(e.loc?.line).toBe(line);
    expect(e.message).toContain(`stack: symbol '*' (attention) is mapped but never used in the pattern "MM"`);
    expect(e.hint).toBe("use the symbol in the pattern or remove it");
  });

  it("a ratio that places no layer of a mapped symbol says so", () => {
    const e = caught(() => stack({ layers: 4, ratios: { attention: 0.1 }, M: mlp({ hidden: 32 }), "*": attention({ heads: 2 }) }));
    expect(e.message).toContain(`symbol '*' (attention) is mapped but never used in the pattern "MMMM"`);
    expect(e.hint).toContain("with 4 layers the ratios place no '*' layer");
  });
});

describe("kernel rules with advice (mamba2 defaults at a small dModel)", () => {
  it("names the option to change, and the advice compiles", () => {
    const m = model({ name: "m2", vocab: 256, dModel: 128, seqLen: 64, layers: stack({ pattern: "M", M: mamba2({ dState: 64, chunk: 64 }) }) }); const line = lineHere();
    const e = caught(() => checkKernelRules(m));
    expect(e.loc?.line).toBe(line);
    expect(e.message).toContain("mamba2: in_proj's width 2·d_inner + 2·groups·dState + heads = 2·256 + 2·1·64 + 4 = 644 is not a multiple of 8");
    const expand = Number(/change expand: ([\d.]+)/.exec(e.hint ?? "")?.[1]);
    expect(expand).toBe(4);
    const fixed = model({ name: "m2", vocab: 256, dModel: 128, seqLen: 64, layers: stack({ pattern: "M", M: mamba2({ dState: 64, chunk: 64, expand }) }) });
    expect(() => checkKernelRules(fixed)).not.toThrow();
    expect(emitProject(fixed).kernels.length).toBeGreaterThan(0);
  });

  it("the 8B-sized defaults need no advice", () => {
    const m = model({ name: "m2", vocab: 256, dModel: 1024, seqLen: 64, layers: [mamba2()] });
    expect(() => checkKernelRules(m)).not.toThrow();
  });
});

describe("lowering is memoised", () => {
  it("toGraph returns the same graph object (loading lowers once, inside the time limit)", () => {
    const m = model({ name: "memo", vocab: 32, dModel: 16, layers });
    expect(m.toGraph()).toBe(m.toGraph());
  });
});

describe("custom layer kinds and stack symbols", () => {
  it("a layer kind that is not a plain name is rejected at the layer() line", () => {
    for (const kind of ["", "my layer", "a\nb", "x".repeat(65), "9lives"]) {
      const e = caught(() => layer(kind, {}, (_ctx, x) => x)); const line = lineHere();
      expect(e.loc?.line).toBe(line);
      expect(e.message).toContain(`layer: kind ${JSON.stringify(kind)} is not a valid layer name`);
    }
    expect(layer("gated_mlp", {}, (_ctx, x) => x).kind).toBe("gated_mlp");
  });

  it("whitespace and control characters are not symbols", () => {
    for (const sym of [" ", "\n", "\t"]) {
      const e = caught(() => stack({ pattern: "M", M: mlp({ hidden: 32 }), [sym]: mlp({ hidden: 32 }) }));
      expect(e.message).toContain(`stack: ${JSON.stringify(sym)} is not a layer symbol`);
    }
  });
});
