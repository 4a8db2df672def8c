/**
 * The row-kernel library (st::row_stats, st::block_sum, st::rope in strata_ops.cuh) against the
 * interpreter, without a GPU: tests/device/norms_host.cu runs them under the host compiler with
 * tests/device/host_block.h standing in for a 256-thread block (barriers, warp shuffles, shared
 * memory), on fresh random rows, for RMSNorm, LayerNorm(-1p, bias), Mamba-2's grouped gated
 * RMSNorm and rotary embedding (partial and full, positions far into a long context).
 *
 * The normalisation around row_stats mirrors templates/row.cu.hbs by hand; the rendered row
 * kernels themselves are compiled by the nvcc tests and run by the GPU suite. Seed: STRATA_SEED.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { mkNode, type Attrs } from "../../compiler/ir/node.js";
import "../../compiler/ir/ops.js";
import type { OpName } from "../../compiler/ir/registry.js";
import { evaluate, Rng } from "../../compiler/interp/interp.js";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import { cachedNvcc, type BuildResult } from "./host-build.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SEED = Number(process.env.STRATA_SEED ?? Date.now() % 1_000_000_007);
const msg = (what: string) => `${what} (seed ${SEED}; rerun with STRATA_SEED=${SEED})`;
console.log(`[device/norms-host] seed ${SEED} (STRATA_SEED=${SEED} reproduces this run)`);

/** ‖got − ref‖∞ / ‖ref‖∞: float32 statistics and math against float64 (measured ≲ 3e-7). */
const TOL = 2e-6;

interface Spec {
  name: string;
  kind: 0 | 1 | 2 | 3;
  rows: number;
  cols: number;
  groups?: number;
  oneP?: boolean;
  bias?: boolean;
  eps?: number;
  rot?: number;
  heads?: number;
  theta?: number;
  pos0?: number;
  /** Scales x: 1e-3 puts mean(x²) next to eps, where the eps term decides the result. */
  xScale?: number;
}

const SPECS: Spec[] = [
  { name: "rmsnorm 1024", kind: 0, rows: 6, cols: 1024 },
  { name: "rmsnorm 200 (ragged: cols not a multiple of the block), eps 1e-6", kind: 0, rows: 5, cols: 200, eps: 1e-6 },
  { name: "rmsnorm 512, rows near eps (x ~ 1e-3)", kind: 0, rows: 4, cols: 512, xScale: 1e-3 },
  { name: "layernorm 768 + bias", kind: 1, rows: 5, cols: 768, bias: true },
  { name: "layernorm1p 512", kind: 1, rows: 4, cols: 512, oneP: true },
  { name: "gatedRmsnorm 512, groups of 128", kind: 2, rows: 5, cols: 512, groups: 4 },
  { name: "gatedRmsnorm 256, one group", kind: 2, rows: 3, cols: 256, groups: 1 },
  { name: "rope full, 4 heads × 64", kind: 3, rows: 16, cols: 256, heads: 4, rot: 64, theta: 10000 },
  { name: "rope half (fraction 0.5), theta 5e5, positions ≥ 100000", kind: 3, rows: 8, cols: 256, heads: 2, rot: 64, theta: 500000, pos0: 100000 },
];

function data(s: Spec, rng: Rng) {
  const n = s.rows * s.cols;
  const f32 = (k: number, f: (i: number) => number) => Float32Array.from({ length: k }, (_, i) => f(i));
  // per-row offsets and scales so mean subtraction and the eps term both matter
  const rowShift = f32(s.rows, () => 2 * rng.normal());
  const rowScale = f32(s.rows, () => Math.exp(rng.normal()));
  return {
    x: f32(n, (i) => (s.xScale ?? 1) * (rowShift[Math.floor(i / s.cols)]! + rowScale[Math.floor(i / s.cols)]! * rng.normal())),
    z: f32(n, () => 2 * rng.normal()),
    w: f32(s.cols, () => 1 + 0.3 * rng.normal()),
    b: f32(s.cols, () => 0.5 * rng.normal()),
  };
}

function reference(s: Spec, d: ReturnType<typeof data>): Float64Array {
  const eps = s.eps ?? 1e-5;
  const t = (v: Float32Array, shape: number[]) => ({ shape, data: Float64Array.from(v) });
  const inp = (name: string, shape: number[], dtype: "f32" | "i32" = "f32") => mkNode("input", [], { name }, { dtype, shape });
  const X = s.kind === 3 ? [1, s.rows, s.heads!, s.cols / s.heads!] : [s.rows, s.cols];
  const x = inp("x", X), z = inp("z", X), w = inp("w", [s.cols]), b = inp("b", [s.cols]);
  let node;
  const mk = (op: OpName, ins: typeof x[], a: Attrs) => mkNode(op, ins, a);
  if (s.kind === 0) node = mk("rmsnorm", [x, w], { eps, oneP: !!s.oneP });
  else if (s.kind === 1) node = mk("layernorm", s.bias ? [x, w, b] : [x, w], { eps, oneP: !!s.oneP });
  else if (s.kind === 2) node = mk("gatedRmsnorm", [x, z, w], { eps, groupSize: s.cols / s.groups! });
  else node = mk("rope", [x, inp("pos", [s.rows], "i32")], { fraction: s.rot! / (s.cols / s.heads!), theta: s.theta! });
  const pos = { shape: [s.rows], data: Float64Array.from({ length: s.rows }, (_, i) => (s.pos0 ?? 0) + i) };
  const out = evaluate([node], { inputs: { x: t(d.x, X), z: t(d.z, X), w: t(d.w, [s.cols]), b: t(d.b, [s.cols]), pos } });
  return out["0"]!.data as Float64Array;
}

const nvcc = findNvcc();

describe.skipIf(!nvcc)("row-kernel library on a host-emulated block vs the interpreter", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-device-norms-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  let build: BuildResult;
  beforeAll(async () => {
    build = await cachedNvcc(readFileSync(path.join(HERE, "norms_host.cu"), "utf8"), [INCLUDE_DIR, HERE], ["-x", "c++", "-std=c++20", "-O2", "-o", "prog"], "norms host program");
  }, 300_000);

  const rng = new Rng(`device-norms:${SEED}`);
  for (const s of SPECS) {
    it(s.name, async () => {
      const d = data(s, rng);
      const header = Buffer.alloc(44);
      [s.kind, s.rows, s.cols, s.groups ?? 1, s.oneP ? 1 : 0, s.bias ? 1 : 0, s.rot ?? 0, s.heads ?? 1].forEach((v, i) => header.writeInt32LE(v, 4 * i));
      header.writeFloatLE(s.eps ?? 1e-5, 32);
      header.writeFloatLE(s.theta ?? 10000, 36);
      header.writeFloatLE(s.pos0 ?? 0, 40);
      const buf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      const inFile = path.join(work, `${s.kind}-${s.cols}-in.bin`), outFile = path.join(work, `${s.kind}-${s.cols}-out.bin`);
      writeFileSync(inFile, Buffer.concat([header, buf(d.x), buf(d.z), buf(d.w), buf(d.b)]));
      await execa(path.join(build.dir, "prog"), [inFile, outFile]);
      const raw = readFileSync(outFile);
      const got = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      const want = reference(s, d);
      expect(got.length).toBe(want.length);
      let worst = 0, scale = 0, at = 0;
      for (let i = 0; i < want.length; i++) {
        scale = Math.max(scale, Math.abs(want[i]!));
        const e = Number.isFinite(got[i]!) ? Math.abs(got[i]! - want[i]!) : Infinity;
        if (e > worst) [worst, at] = [e, i];
      }
      expect(scale, msg(`${s.name}: reference is all zeros`)).toBeGreaterThan(0.1);
      const rel = worst / scale;
      const tol = TOL;
      console.log(`[device/norms-host] ${s.name}: error ${rel.toExponential(2)} (tol ${tol})`);
      expect(rel, msg(`${s.name}: worst at ${at}: got ${got[at]}, want ${want[at]}`)).toBeLessThanOrEqual(tol);
    });
  }
});
