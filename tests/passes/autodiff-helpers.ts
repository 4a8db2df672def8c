/**
 * Gradient checks against finite differences in float64. The derivative along one coordinate (or
 * one random direction) is the 4-point central difference (8(L(+h) − L(−h)) − (L(+2h) − L(−2h)))/12h,
 * whose truncation error is O(h⁴), so at h = 3e-4 what remains is the loss's float64 rounding.
 * Seeds come from tests/interp/helpers (fresh per run, STRATA_SEED to replay).
 */
import { expect } from "vitest";
import { Rng } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { msg } from "../interp/helpers.js";

export const FD_STEP = Number(process.env.STRATA_FD_STEP ?? 3e-4);
/**
 * |autodiff − FD| / max(|FD|, FLOOR·max|grad of that tensor|) must stay below this. A wrong VJP
 * rule is off by O(1); what a right one leaves is the float64 rounding of a loss computed through
 * ~1e5 operations, divided by 12h — seen up to 1.8e-6 on small entries of the tiny examples
 * (seed 258462), so 1e-5 keeps five orders of magnitude of margin on both sides.
 */
export const GRAD_RTOL = 1e-5;
/** Entries far below the tensor's largest gradient are compared against that scale instead. */
export const GRAD_FLOOR = 1e-2;

/** Derivative of `loss` along `dir` at the current values of `t` (restored afterwards). */
export function fdDirectional(loss: () => number, t: Tensor, dir: ArrayLike<number> | number, h = FD_STEP): number {
  const d = t.data;
  const base = Float64Array.from(d);
  const at = (s: number) => {
    if (typeof dir === "number") d[dir] = base[dir]! + s;
    else for (let i = 0; i < d.length; i++) d[i] = base[i]! + s * dir[i]!;
    const v = loss();
    d.set(base);
    return v;
  };
  return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
}

/** Scale directions to unit L2 norm together (a step h then moves the weights by h). */
export function unitNorm(dirs: Float64Array[]): void {
  let ss = 0;
  for (const d of dirs) for (const v of d) ss += v * v;
  const k = 1 / Math.sqrt(ss);
  for (const d of dirs) for (let i = 0; i < d.length; i++) d[i]! *= k;
}

export interface GradCheck {
  /** Worst error over the checked entries and directions. */
  worst: number;
  checked: number;
}

/**
 * Compare `grad` (autodiff) with finite differences of `loss` w.r.t. tensor `t`: the given entries
 * (all when `entries` is undefined) plus `directions` random directions (dot products).
 */
export function checkGrad(what: string, loss: () => number, t: Tensor, grad: Tensor, rng: Rng, o: { entries?: number[]; directions?: number } = {}): GradCheck {
  expect(grad.shape, msg(`${what}: gradient shape`)).toEqual(t.shape);
  let scale = 0;
  for (const v of grad.data) scale = Math.max(scale, Math.abs(v));
  expect(scale, msg(`${what}: the gradient is all zeros — not a valid check`)).toBeGreaterThan(0);
  const floor = GRAD_FLOOR * scale;
  let worst = 0;
  let checked = 0;
  const entries = o.entries ?? [...Array(t.data.length).keys()];
  for (const i of entries) {
    const fd = fdDirectional(loss, t, i);
    const err = Math.abs(grad.data[i]! - fd) / Math.max(Math.abs(fd), floor);
    worst = Math.max(worst, err);
    checked++;
    expect(err, msg(`${what}[${i}]: autodiff ${grad.data[i]} vs finite difference ${fd}, rel err ${err.toExponential(2)}`)).toBeLessThan(GRAD_RTOL);
  }
  for (let k = 0; k < (o.directions ?? 0); k++) {
    const dir = new Float64Array(t.data.length);
    for (let i = 0; i < dir.length; i++) dir[i] = rng.normal();
    unitNorm([dir]);
    let ad = 0, norm = 0;
    for (let i = 0; i < dir.length; i++) {
      ad += grad.data[i]! * dir[i]!;
      norm += Math.abs(grad.data[i]! * dir[i]!);
    }
    const fd = fdDirectional(loss, t, dir);
    const err = Math.abs(ad - fd) / Math.max(Math.abs(fd), GRAD_FLOOR * norm);
    worst = Math.max(worst, err);
    checked++;
    expect(err, msg(`${what} along a random direction: autodiff ${ad} vs finite difference ${fd}, rel err ${err.toExponential(2)}`)).toBeLessThan(GRAD_RTOL);
  }
  return { worst, checked };
}
