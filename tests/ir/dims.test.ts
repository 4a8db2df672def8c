/** Symbolic dim algebra: canonical forms, addition, substitution, evaluation. */
import { describe, expect, it } from "vitest";
import { canonDim, dimAdd, dimSymbols, evalDim, evalShape, shapeStr, shapeVolume, substDim } from "../../compiler/ir/dims.js";

describe("canonDim", () => {
  it("keeps numbers and plain symbols", () => {
    expect(canonDim(7)).toBe(7);
    expect(canonDim("B")).toBe("B");
  });

  it("sorts symbols, strips spaces, puts the constant last and folds constants", () => {
    expect(canonDim("T + B")).toBe("B+T");
    expect(canonDim("1+P")).toBe("P+1");
    expect(canonDim("P+2-1")).toBe("P+1");
    expect(canonDim("P-3")).toBe("P-3");
  });

  it("collapses to a number when the symbols cancel", () => {
    expect(canonDim("P-P+4")).toBe(4);
    expect(canonDim("T-T")).toBe(0);
  });

  it("rejects malformed dims and coefficients other than ±1", () => {
    expect(() => canonDim("2*T")).toThrow(/bad symbolic dim '2\*T'/);
    expect(() => canonDim("T+T")).toThrow(/coefficient 2·T/);
  });
});

describe("dimAdd", () => {
  it('"P" + 1 = "P+1" and the result is canonical', () => {
    expect(dimAdd("P", 1)).toBe("P+1");
    expect(dimAdd(1, "P")).toBe("P+1");
    expect(dimAdd("P+1", -1)).toBe("P");
    expect(dimAdd(3, 4)).toBe(7);
    expect(dimAdd("T", "P")).toBe("P+T");
    expect(dimAdd("P+T", "-T")).toBe("P");
  });
});

describe("substDim", () => {
  it("replaces symbols by numbers or other dims", () => {
    expect(substDim("T", { T: 1 })).toBe(1);
    expect(substDim("P+1", { P: "S" })).toBe("S+1");
    expect(substDim("P+T", { T: 1 })).toBe("P+1");
    expect(substDim("P+1", { P: "Q-1" })).toBe("Q");
    expect(substDim("B", { T: 5 })).toBe("B");
    expect(substDim(12, { T: 5 })).toBe(12);
  });
});

describe("evalDim / evalShape", () => {
  it("evaluates with bindings", () => {
    expect(evalDim("P+1", { P: 9 })).toBe(10);
    expect(evalDim(4, {})).toBe(4);
    expect(evalShape(["B", "T", 64], { B: 2, T: 16 })).toEqual([2, 16, 64]);
  });

  it("names the unbound symbol and the dim it appears in", () => {
    expect(() => evalDim("P+1", { T: 3 })).toThrow("no value bound for symbolic dim 'P' (in 'P+1')");
    expect(() => evalShape(["B", "T"], { B: 1 })).toThrow(/'T'/);
  });
});

describe("helpers", () => {
  it("dimSymbols, shapeStr and shapeVolume", () => {
    expect(dimSymbols("P+T+1").sort()).toEqual(["P", "T"]);
    expect(dimSymbols(3)).toEqual([]);
    expect(shapeStr(["B", "T", 128])).toBe("[B, T, 128]");
    expect(shapeVolume(["T", 4, "B", 8])).toEqual({ c: 32, syms: ["B", "T"] });
    expect(shapeVolume(["B", "T", 32])).toEqual(shapeVolume(["T", 32, "B"]));
  });
});
