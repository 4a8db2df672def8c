/**
 * Test helpers for the reference interpreter: seeded random inputs, a direct caller for ref
 * functions, error norms, and multi-index access. The naive formulations live in the tests
 * themselves, written with explicit loops; none of them calls ref.ts.
 */
import { expect } from "vitest";
import { randomTensor, Rng } from "../../compiler/interp/interp.js";
import { alloc, type Precision, type RefFn, type Tensor } from "../../compiler/interp/tensor.js";
import type { Attrs } from "../../compiler/ir/node.js";

/** Fresh seed per run (override with STRATA_SEED=…); every failure message prints it. */
export const SEED = Number(process.env.STRATA_SEED ?? Date.now() % 1_000_000_007);
let counter = 0;
/** A new seed for each call: SEED·1000 + n. */
export const nextSeed = () => SEED * 1000 + counter++;
export const msg = (what: string) => `${what} (seed ${SEED}; rerun with STRATA_SEED=${SEED})`;

/** Random normal tensor (f64 buffer holding values exactly representable in f32). */
export function rnd(shape: number[], scale = 1): Tensor {
  const t = randomTensor(shape, nextSeed(), "f64", scale);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.fround(t.data[i]!);
  return t;
}

/** Random uniform in [lo, hi) (f32-exact values). */
export function rndU(shape: number[], lo: number, hi: number): Tensor {
  const t = alloc(shape, "f64");
  const rng = new Rng(`u:${nextSeed()}`);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.fround(rng.range(lo, hi));
  return t;
}

/** Random integers in [0, n). */
export function rndInt(shape: number[], n: number): Tensor {
  const t = rndU(shape, 0, 1);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.min(n - 1, Math.floor(t.data[i]! * n));
  return t;
}

export function tensor(shape: number[], values: number[] | Float64Array): Tensor {
  const t = alloc(shape, "f64");
  t.data.set(values);
  return t;
}

export function toF32(t: Tensor): Tensor {
  const o = alloc(t.shape, "f32");
  o.data.set(t.data);
  return o;
}

export function call(fn: RefFn, inputs: Tensor[], attrs: Attrs, outShape: number[], precision: Precision = "f64", ssdMode: "chunked" | "recurrent" = "chunked"): Tensor {
  const ins = precision === "f32" ? inputs.map(toF32) : inputs;
  return fn(ins, attrs, { precision, outShape, ssdMode });
}

/** ‖a − b‖ / ‖b‖ (b must not be all zeros). */
export function relErr(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const x = "data" in a ? a.data : a;
  const y = "data" in b ? b.data : b;
  if (x.length !== y.length) throw new Error(`relErr: lengths ${x.length} vs ${y.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i]! - y[i]!) ** 2;
    den += y[i]! ** 2;
  }
  if (den === 0) throw new Error("relErr: reference is all zeros — not a valid check");
  return Math.sqrt(num / den);
}

export function expectClose(got: Tensor, ref: Tensor | ArrayLike<number>, tol: number, what: string): void {
  const refShape = "shape" in ref && "data" in ref ? (ref as Tensor).shape : undefined;
  if (refShape) expect(got.shape, msg(`${what}: shape`)).toEqual(refShape);
  const e = relErr(got, ref);
  expect(e, msg(`${what}: rel err ${e}`)).toBeLessThan(tol);
}

/** Row-major offset of a multi-index. */
export function off(shape: readonly number[], idx: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < shape.length; i++) o = o * shape[i]! + idx[i]!;
  return o;
}

export const get = (t: Tensor, ...idx: number[]) => t.data[off(t.shape, idx)]!;

export function set(t: Tensor, v: number, ...idx: number[]): void {
  t.data[off(t.shape, idx)] = v;
}

export const zeros = (shape: number[]) => alloc(shape, "f64");
