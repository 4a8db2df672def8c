import { describe, expect, it } from "vitest";
import * as R from "../../compiler/interp/ref.js";
import { call, get, msg, rnd } from "./helpers.js";

describe("views", () => {
  it("reshape keeps row-major order (a copy)", () => {
    const x = rnd([2, 3, 4]);
    const y = call(R.reshape, [x], { shape: [6, 4] }, [6, 4]);
    expect(y.shape).toEqual([6, 4]);
    expect([...y.data]).toEqual([...x.data]);
    expect(y.data).not.toBe(x.data);
    expect(() => call(R.reshape, [x], {}, [5, 5])).toThrow(/cannot reshape/);
  });

  it("slice along each axis", () => {
    const x = rnd([3, 4, 5]);
    for (const [axis, start, end] of [[0, 1, 3], [1, 0, 2], [2, 2, 5], [1, 3, 4]] as const) {
      const shape = [3, 4, 5];
      shape[axis] = end - start;
      const y = call(R.slice, [x], { axis, start, end }, shape);
      for (let i = 0; i < shape[0]!; i++)
        for (let j = 0; j < shape[1]!; j++)
          for (let k = 0; k < shape[2]!; k++) {
            const src = [i, j, k];
            src[axis]! += start;
            expect(get(y, i, j, k), msg(`slice axis ${axis}`)).toBe(get(x, ...src));
          }
    }
    expect(() => call(R.slice, [x], { axis: 1, start: 2, end: 9 }, [3, 7, 5])).toThrow(/not inside axis 1 of size 4/);
  });

  it("concat along each axis, three inputs", () => {
    for (const axis of [0, 1, 2]) {
      const sizes = [2, 1, 3];
      const parts = sizes.map((s) => {
        const sh = [2, 3, 4];
        sh[axis] = s;
        return rnd(sh);
      });
      const shape = [2, 3, 4];
      shape[axis] = 6;
      const y = call(R.concat, parts, { axis }, shape);
      for (let i = 0; i < shape[0]!; i++)
        for (let j = 0; j < shape[1]!; j++)
          for (let k = 0; k < shape[2]!; k++) {
            const idx = [i, j, k];
            let p = 0;
            while (idx[axis]! >= sizes[p]!) idx[axis]! -= sizes[p++]!;
            expect(get(y, i, j, k), msg(`concat axis ${axis}`)).toBe(get(parts[p]!, ...idx));
          }
    }
  });

  it("transpose by a permutation", () => {
    const x = rnd([2, 3, 4, 5]);
    for (const perm of [[0, 2, 1, 3], [3, 2, 1, 0], [1, 3, 0, 2], [0, 1, 2, 3]]) {
      const shape = perm.map((p) => x.shape[p]!);
      const y = call(R.transpose, [x], { perm }, shape);
      for (let a = 0; a < shape[0]!; a++)
        for (let b = 0; b < shape[1]!; b++)
          for (let c = 0; c < shape[2]!; c++)
            for (let d = 0; d < shape[3]!; d++) {
              const o = [a, b, c, d];
              const src = [0, 0, 0, 0];
              perm.forEach((p, i) => (src[p] = o[i]!));
              expect(get(y, a, b, c, d), msg(`transpose ${perm}`)).toBe(get(x, ...src));
            }
    }
    expect(() => call(R.transpose, [x], { perm: [0, 0, 1, 2] }, [2, 2, 3, 4])).toThrow(/not a permutation/);
  });
});
