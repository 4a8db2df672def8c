import { describe, expect, it } from "vitest";
import * as R from "../../compiler/interp/ref.js";
import type { RefFn, Tensor } from "../../compiler/interp/tensor.js";
import { call, expectClose, msg, rnd, tensor, zeros } from "./helpers.js";

// naive erf by Simpson integration of 2/√π·e^{−t²} on [0, x] (independent of ref's series/CF)
function erfNaive(x: number): number {
  const n = 20000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
}

const unaries: [string, RefFn, (x: number) => number, number][] = [
  ["neg", R.neg, (x) => -x, 1],
  ["exp", R.exp, (x) => Math.exp(x), 1],
  ["log", R.log, (x) => Math.log(Math.abs(x) + 0.1), 0], // input shifted below
  ["sqrt", R.sqrt, (x) => Math.sqrt(Math.abs(x) + 0.1), 0],
  ["rsqrt", R.rsqrt, (x) => 1 / Math.sqrt(Math.abs(x) + 0.1), 0],
  ["square", R.square, (x) => x * x, 1],
  ["tanh", R.tanh, (x) => (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1), 1],
  ["sigmoid", R.sigmoid, (x) => 1 / (1 + Math.exp(-x)), 1],
  ["silu", R.silu, (x) => x / (1 + Math.exp(-x)), 1],
  ["softplus", R.softplus, (x) => (x > 20 ? x : Math.log(1 + Math.exp(x))), 1],
  ["relu", R.relu, (x) => (x < 0 ? 0 : x), 1],
  ["relu2", R.relu2, (x) => (x < 0 ? 0 : x) ** 2, 1],
  ["mish", R.mish, (x) => x * Math.tanh(Math.log(1 + Math.exp(x))), 1],
  ["gelu", R.gelu, (x) => 0.5 * x * (1 + erfNaive(x / Math.SQRT2)), 1],
  ["cast", R.cast, (x) => x, 1],
];

describe("unary elementwise", () => {
  for (const [name, fn, f, direct] of unaries) {
    it(`${name} matches the formula (f64 and f32)`, () => {
      const x = rnd([3, 5, 7], 3);
      if (!direct) for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(Math.abs(x.data[i]!) + 0.1);
      const want = zeros(x.shape as number[]);
      for (let i = 0; i < x.data.length; i++) want.data[i] = direct ? f(x.data[i]!) : f(x.data[i]! - 0.1);
      const got = call(fn, [x], {}, [3, 5, 7]);
      expect(got.data).toBeInstanceOf(Float64Array);
      expectClose(got, want, 1e-10, name);
      const g32 = call(fn, [x], {}, [3, 5, 7], "f32");
      expect(g32.data).toBeInstanceOf(Float32Array);
      expectClose(g32, want, 1e-5, `${name} f32`);
    });
  }

  it("softplus is linear above 20 and accurate for very negative x", () => {
    const x = tensor([4], [25, 20.5, -40, 1e-3]);
    const y = call(R.softplus, [x], {}, [4]);
    expect(y.data[0]).toBe(25);
    expect(y.data[1]).toBe(20.5);
    expect(Math.abs(y.data[2]! - Math.exp(-40)) / Math.exp(-40)).toBeLessThan(1e-14);
    expect(Math.abs(y.data[3]! - Math.log1p(Math.exp(1e-3)))).toBeLessThan(1e-16);
  });

  it("gelu matches known values (exact erf form) and the tanh form", () => {
    const x = tensor([5], [1, -0.5, 0, 3, -6]);
    const y = call(R.gelu, [x], {}, [5]);
    expect(Math.abs(y.data[0]! - 0.8413447460685429)).toBeLessThan(1e-15);
    expect(Math.abs(y.data[1]! - -0.15426876936299344)).toBeLessThan(1e-15);
    expect(y.data[2]).toBe(0);
    expect(Math.abs(y.data[3]! - 3 * (1 - 1.3498980316300946e-3)) / 3).toBeLessThan(1e-15); // 3·Φ(3)
    // gelu(−6) = −6·Φ(−6), Φ(−6) = 9.865876450376981e−10: the tail keeps full relative accuracy
    expect(Math.abs(y.data[4]! - -6 * 9.865876450376981e-10) / 5.9e-9).toBeLessThan(1e-14);
    const yt = call(R.gelu, [x], { approximate: "tanh" }, [5]);
    for (let i = 0; i < 5; i++) {
      const v = x.data[i]!;
      const want = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      expect(Math.abs(yt.data[i]! - want), msg(`gelu tanh at ${v}`)).toBeLessThanOrEqual(1e-15 * Math.max(1, Math.abs(want)));
    }
    expect(Math.abs(yt.data[0]! - 0.8411919906082768)).toBeLessThan(1e-15);
  });

  it("scale / addScalar use attrs.value", () => {
    const x = rnd([2, 9]);
    const a = call(R.scale, [x], { value: -1.75 }, [2, 9]);
    const b = call(R.addScalar, [x], { value: 0.5 }, [2, 9]);
    for (let i = 0; i < 18; i++) {
      expect(a.data[i]).toBe(x.data[i]! * -1.75);
      expect(b.data[i]).toBe(x.data[i]! + 0.5);
    }
  });
});

describe("binary elementwise with NumPy broadcasting", () => {
  const ops: [string, RefFn, (a: number, b: number) => number][] = [
    ["add", R.add, (a, b) => a + b],
    ["sub", R.sub, (a, b) => a - b],
    ["mul", R.mul, (a, b) => a * b],
    ["div", R.div, (a, b) => a / b],
  ];
  const cases: [number[], number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4], [2, 3, 4]],
    [[2, 1, 4], [3, 1], [2, 3, 4]],
    [[1], [2, 3], [2, 3]],
    [[5, 1, 3], [1, 4, 1], [5, 4, 3]],
    [[], [2, 2], [2, 2]],
    [[3, 4], [2, 1, 1], [2, 3, 4]],
  ];
  for (const [name, fn, f] of ops)
    it(`${name} broadcasts like NumPy`, () => {
      for (const [sa, sb, so] of cases) {
        const a = rnd(sa);
        const b = rnd(sb);
        if (name === "div") for (let i = 0; i < b.data.length; i++) b.data[i] = Math.fround(b.data[i]! + Math.sign(b.data[i]!) * 0.5);
        const want = zeros(so);
        // naive: for each output multi-index, pick the aligned element of each operand
        const idx = new Array(so.length).fill(0);
        for (let o = 0; o < want.data.length; o++) {
          let r = o;
          for (let ax = so.length - 1; ax >= 0; ax--) {
            idx[ax] = r % so[ax]!;
            r = Math.floor(r / so[ax]!);
          }
          const pick = (t: Tensor) => {
            let k = 0;
            for (let i = 0; i < t.shape.length; i++) {
              const ax = so.length - t.shape.length + i;
              k = k * t.shape[i]! + (t.shape[i] === 1 ? 0 : idx[ax]);
            }
            return t.data[k]!;
          };
          want.data[o] = f(pick(a), pick(b));
        }
        const got = call(fn, [a, b], {}, so);
        expectClose(got, want, 1e-15, `${name} ${JSON.stringify(sa)} ∘ ${JSON.stringify(sb)}`);
        expectClose(call(fn, [a, b], {}, so, "f32"), want, 1e-6, `${name} f32`);
      }
    });

  it("rejects shapes that do not broadcast", () => {
    expect(() => call(R.add, [rnd([2, 3]), rnd([4])], {}, [2, 3])).toThrow(/do not broadcast/);
  });
});

describe("softmax / reduceMean", () => {
  it("softmax over the last axis (stable for large logits)", () => {
    const x = rnd([3, 4, 11], 5);
    x.data[0] = 800; // would overflow a naive exp
    const want = zeros([3, 4, 11]);
    for (let r = 0; r < 12; r++) {
      let m = -Infinity;
      for (let i = 0; i < 11; i++) m = Math.max(m, x.data[r * 11 + i]!);
      let s = 0;
      for (let i = 0; i < 11; i++) s += Math.exp(x.data[r * 11 + i]! - m);
      for (let i = 0; i < 11; i++) want.data[r * 11 + i] = Math.exp(x.data[r * 11 + i]! - m) / s;
    }
    expectClose(call(R.softmax, [x], {}, [3, 4, 11]), want, 1e-12, "softmax");
    expectClose(call(R.softmax, [x], {}, [3, 4, 11], "f32"), want, 1e-5, "softmax f32");
  });

  it("reduceMean of all elements is a scalar", () => {
    const x = rnd([4, 6]);
    let s = 0;
    for (const v of x.data) s += v;
    const y = call(R.reduceMean, [x], {}, []);
    expect(y.shape).toEqual([]);
    expect(Math.abs(y.data[0]! - s / 24)).toBeLessThan(1e-14);
  });

  it("arange and full", () => {
    expect([...call(R.arange, [], {}, [5]).data]).toEqual([0, 1, 2, 3, 4]);
    expect([...call(R.full, [], { value: 2.5 }, [2, 2]).data]).toEqual([2.5, 2.5, 2.5, 2.5]);
    expect(() => call(R.source, [], {}, [2])).toThrow(/bound by the interpreter/);
  });
});
