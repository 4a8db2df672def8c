import { describe, expect, it } from "vitest";
import { checkParams } from "./helpers.js";
import type { ModelDef } from "../../compiler/dsl/index.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyMamba2 from "../../examples/tiny-mamba2.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import tinyCustom from "../../examples/tiny-custom-ratio.js";
import myHybrid from "../../examples/my-hybrid.js";

const tiny: Record<string, ModelDef> = {
  "tiny-transformer": tinyTransformer,
  "tiny-mamba": tinyMamba,
  "tiny-mamba2": tinyMamba2,
  "tiny-hybrid": tinyHybrid,
  "tiny-custom-ratio": tinyCustom,
};

describe("tiny examples", () => {
  it.each(Object.entries(tiny))("%s lowers to logits [B, T, vocab] with well-formed params", (name, m) => {
    expect(m.config.name).toBe(name);
    expect(m.config.dModel).toBeLessThanOrEqual(256);
    expect(m.config.vocab).toBeLessThanOrEqual(512);
    expect(m.config.seqLen).toBe(64);
    expect(m.layers.length).toBeGreaterThanOrEqual(2);
    expect(m.layers.length).toBeLessThanOrEqual(6);
    const g = m.toGraph();
    expect(g.outputs.logits!.shape).toEqual(["B", "T", m.config.vocab]);
    expect(g.meta.pattern).toBe(m.pattern);
    checkParams(m);
  });

  it("tiny-hybrid uses all three layer kinds and tiny-custom-ratio comes from ratios", () => {
    expect(new Set(tinyHybrid.pattern)).toEqual(new Set(["M", "*", "-"]));
    expect(tinyCustom.stack?.ratios).toBeDefined();
    expect(tinyCustom.pattern).toBe("MM-*M-");
  });
});

describe("larger examples", () => {
  it("my-hybrid: 24 layers from ratios 0.1 / 0.5", () => {
    expect(myHybrid.config).toMatchObject({ name: "my-hybrid", vocab: 32000, dModel: 1024 });
    expect(myHybrid.pattern).toBe("M-M-M--*M-M-M-M-*M--M-M-");
    expect(myHybrid.toGraph().outputs.logits!.shape).toEqual(["B", "T", 32000]);
    checkParams(myHybrid);
  });
});
