/**
 * The vectorized row kernels (compiler/kernels/row.ts, templates/row.cu.hbs: 8 columns per thread,
 * 16-byte loads and stores) against the scalar loop, without a GPU: real row kernels are rendered
 * from small IR groups both ways (vectorized, and with `vectorize: false`), compiled together for
 * the host (tests/device/host_block.h plays threadIdx; an elementwise kernel's threads run one
 * after another, which a kernel without barriers allows; a norm's block runs as std::threads with
 * barriers, its dynamic shared row a static array), run on fresh random inputs, and their outputs
 * compared bit for bit — and with the interpreter within float32/bf16 tolerance.
 *
 * The groups: bf16 chains (the SiLU-backward shape of the 0.85B's largest row kernel), per-column
 * weights, f32 operands and outputs, several outputs, per-row scalars and per-head broadcasts
 * (read per element inside the vector loop), a parameter-only kernel, a column count that is not
 * a multiple of 8 (no vector loop), norms (RMSNorm, 1p with an f32 weight at the 0.85B's 4096
 * columns, gated with groups and a sliced gate, LayerNorm with bias and an epilogue, a stored
 * residual add before the norm, a misaligned norm input, 100 columns: scalar passes only; both
 * passes vectorized, s_pre by column so the statistic is the scalar one), views whose offset or
 * row stride is not a multiple of 8 (those operands read per element) and, at run time, base
 * pointers off 16-byte alignment, which must take the scalar loop: the host build of st::ld8 /
 * st::st8 traps on a misaligned pointer, as the GPU would, and counts its calls, so the test also
 * sees that aligned runs took the vector loop.
 *
 * Seed: STRATA_SEED (the source does not depend on it: the build is cached by content).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INCLUDE_DIR, KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { mkNode, type DType, type Node } from "../../compiler/ir/node.js";
import "../../compiler/ir/ops.js";
import { topo } from "../../compiler/ir/graph.js";
import { isNorm } from "../../compiler/ir/registry.js";
import { evaluate, Rng } from "../../compiler/interp/interp.js";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import type { FusionGroup, KernelBody, RenderContext } from "../../compiler/kernels/family.js";
import { renderRowKernel, VEC } from "../../compiler/kernels/row.js";
import { cachedNvcc, type BuildResult } from "./host-build.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SEED = Number(process.env.STRATA_SEED ?? Date.now() % 1_000_000_007);
const msg = (what: string) => `${what} (seed ${SEED}; rerun with STRATA_SEED=${SEED})`;
console.log(`[device/row-vec-host] seed ${SEED} (STRATA_SEED=${SEED} reproduces this run)`);

// 21 rows: on the emulated grid of 2 blocks × 256 threads × 4 groups (2048 groups a pass) the
// vectorized loop of the 1536-column case goes round twice, the second pass partial (4032 groups);
// the narrower cases take one partial pass; the scalar loop strides over rows
const B = 3, T = 7;
/** |got − ref| / (|ref| + 1) against the float64 interpreter: bf16 outputs round once (2⁻⁸). */
const TOL: Record<string, number> = { bf16: 8e-3, f32: 1e-5 };

const inp = (name: string, shape: (number | string)[], dtype: DType = "bf16") => mkNode("input", [], { name }, { dtype, shape });
const par = (name: string, shape: number[], dtype: DType = "bf16") => mkNode("param", [], { name, init: { kind: "zeros" } }, { dtype, shape });
const un = (op: string, x: Node, attrs = {}) => mkNode(op as never, [x], attrs);
const bin = (op: string, x: Node, y: Node) => mkNode(op as never, [x, y]);

interface Case {
  name: string;
  outputs: Node[];
  /** Whether the vector loop must exist (false: the column count rules it out). */
  vector: boolean;
  /** Sources read per element inside the vector loop (by input/param name), if any. */
  perElement?: string[];
}

function cases(): Case[] {
  const out: Case[] = [];
  {
    // the 0.85B's row_e6218636: (a + b + c) · σ(z)(1 + z(1 − σ(z))), 4 bf16 inputs, one bf16 output
    const F = 1536;
    const a = inp("a", ["B", "T", F]), b = inp("b", ["B", "T", F]), c = inp("c", ["B", "T", F]), z = inp("z", ["B", "T", F]);
    const s = un("sigmoid", z);
    const v = bin("mul", bin("add", bin("add", a, b), c), bin("mul", s, un("addScalar", bin("mul", z, un("addScalar", un("neg", s), { value: 1 })), { value: 1 })));
    out.push({ name: "silu backward chain, bf16, 1536 columns", outputs: [v], vector: true });
  }
  {
    // per-column weights (bf16 and f32), a per-row scalar, two outputs (bf16 and f32)
    const F = 256;
    const x = inp("x", ["B", "T", F]), w = par("w", [F]), w2 = par("w2", [F], "f32"), r = inp("r", ["B", "T", 1], "f32");
    const u = bin("mul", bin("mul", x, w), r);
    const v = un("cast", un("silu", bin("add", u, w2)), { to: "f32" });
    out.push({ name: "per-column weights, per-row scalar, bf16 + f32 outputs", outputs: [un("cast", u, { to: "bf16" }), v], vector: true, perElement: ["r"] });
  }
  {
    // f32 operands (two float4 per 8 columns), a bf16 operand, f32 and bf16 outputs
    const F = 512;
    const x = inp("xf", ["B", "T", F], "f32"), y = inp("yf", ["B", "T", F], "f32"), g = inp("g", ["B", "T", F]);
    const v = bin("sub", bin("mul", x, un("softplus", y)), g);
    const w = un("cast", bin("div", v, un("addScalar", un("square", y), { value: 0.5 })), { to: "bf16" });
    out.push({ name: "f32 operands and output, bf16 output", outputs: [v, w], vector: true });
  }
  {
    // [B, T, 4, 64] with a per-head scalar [B, T, 4, 1] and a per-channel weight [64] broadcast over heads
    const x = inp("xh", ["B", "T", 4, 64]), h = inp("hh", ["B", "T", 4, 1], "f32"), w = par("wh", [64]);
    const v = bin("add", bin("mul", x, un("exp", h)), w);
    out.push({ name: "per-head broadcasts over [4, 64]", outputs: [v], vector: true, perElement: ["hh", "wh"] });
  }
  {
    // views: a slice at offset 3 of a 1030-wide row (offset and stride misaligned: per element),
    // a slice at offset 8 of a 1032-wide row (aligned: vectorized); output into a 1024-wide slot
    const p = inp("p", ["B", "T", 1030]), q = inp("q", ["B", "T", 1032]);
    const ps = mkNode("slice", [p], { axis: 2, start: 3, end: 1027 }), qs = mkNode("slice", [q], { axis: 2, start: 8, end: 1032 });
    const v = bin("mul", un("gelu", ps), qs);
    out.push({ name: "slices: misaligned offset/stride (per element) and aligned (vector)", outputs: [v], vector: true, perElement: ["p"] });
  }
  {
    // a slice's gradient: zero padding around a piece (concat of constants and a bf16 input), read
    // per element, stored as vectors; then a per-column weight; and pieces at odd boundaries
    const x = inp("xc", ["B", "T", 24]), w = par("wc", [48]), y = inp("yc", ["B", "T", 5]);
    const zeros = (k: number) => mkNode("full", [], { value: 0 }, { dtype: "bf16", shape: ["B", "T", k] });
    const pad = mkNode("concat", [zeros(16), x, zeros(8)], { axis: 2 });
    const odd = mkNode("concat", [zeros(3), y, x, zeros(16)], { axis: 2 });
    out.push({ name: "concat: zero padding (vector loads and stores), odd piece boundaries (per element)", outputs: [pad, bin("add", bin("mul", pad, w), odd)], vector: true, perElement: ["yc"] });
  }
  {
    // f32 concats over [2, 32]: along the last axis ([2, 24] ⧺ [2, 8]: vector loads), along the
    // first ([1, 32] ⧺ [1, 32]: per element)
    const x = inp("xl", ["B", "T", 2, 24], "f32"), y = inp("yl", ["B", "T", 2, 8], "f32");
    const a = inp("al", ["B", "T", 1, 32], "f32"), b = inp("bl", ["B", "T", 1, 32], "f32");
    const v = bin("mul", mkNode("concat", [x, y], { axis: 3 }), mkNode("concat", [a, b], { axis: 2 }));
    out.push({ name: "f32 concats along the last feature axis (vector) and the first (per element)", outputs: [v], vector: true, perElement: ["al", "bl"] });
  }
  {
    // a column count that is not a multiple of 8: the scalar loop only
    const F = 100;
    const x = inp("xo", ["B", "T", F]), w = par("wo", [F]);
    out.push({ name: "100 columns: no vector loop", outputs: [un("tanh", bin("mul", x, w))], vector: false });
  }
  // norm groups: both passes vectorized (the statistic read from s_pre by column, as the scalar
  // passes do); run on an emulated block (barriers), every row of every run bit-identical
  {
    const x = inp("xn", ["B", "T", 1024]), w = par("wn", [1024]);
    out.push({ name: "rmsnorm, bf16, 1024 columns", outputs: [mkNode("rmsnorm", [x, w], { eps: 1e-5, oneP: false })], vector: true });
  }
  {
    // the 0.85B's width: 512 threads × 8 columns, one pass; scale 1 + w (f32 weight)
    const x = inp("xw", ["B", "T", 4096]), w = par("ww", [4096], "f32");
    out.push({ name: "rmsnorm 1p, f32 weight, 4096 columns", outputs: [mkNode("rmsnorm", [x, w], { eps: 1e-6, oneP: true })], vector: true });
  }
  {
    // Mamba-2's gated norm: z a slice at offset 16 of a 1040-wide row (aligned), groups of 128,
    // and an epilogue (× a per-row scalar, read per element)
    const x = inp("xg", ["B", "T", 512]), zx = inp("zg", ["B", "T", 1040]), w = par("wg", [512]), r = inp("rg", ["B", "T", 1], "f32");
    const z = mkNode("slice", [zx], { axis: 2, start: 16, end: 528 });
    const y = bin("mul", mkNode("gatedRmsnorm", [x, z, w], { eps: 1e-5, groupSize: 128 }), r);
    out.push({ name: "gated rmsnorm, groups of 128, sliced gate, epilogue", outputs: [y], vector: true, perElement: ["rg"] });
  }
  {
    // layernorm with bias: f32 input, f32 weight, bf16 bias; a SiLU·gate epilogue; f32 and bf16 outputs
    const x = inp("xln", ["B", "T", 768], "f32"), w = par("wln", [768], "f32"), b = par("bln", [768]), gate = inp("gln", ["B", "T", 768]);
    const n = mkNode("layernorm", [x, w, b], { eps: 1e-5, oneP: false });
    out.push({ name: "layernorm + bias, epilogue, f32 and bf16 outputs", outputs: [n, un("cast", bin("mul", un("silu", n), gate), { to: "bf16" })], vector: true });
  }
  {
    // the residual add before a norm, stored for its other readers (vector stores in pass 1)
    const a = inp("ra", ["B", "T", 256]), b = inp("rb", ["B", "T", 256]), w = par("rw", [256]);
    const h = bin("add", a, b);
    out.push({ name: "residual add (stored) + rmsnorm", outputs: [h, mkNode("rmsnorm", [h, w], { eps: 1e-5, oneP: false })], vector: true });
  }
  {
    // a norm input at a misaligned offset/stride (a slice at 3 of a 1027-wide row): read per
    // element inside the vector loops, the weight and output still vectors
    const p = inp("pn", ["B", "T", 1027]), w = par("pw", [1024]);
    const x = mkNode("slice", [p], { axis: 2, start: 3, end: 1027 });
    out.push({ name: "rmsnorm of a misaligned slice (read per element)", outputs: [mkNode("rmsnorm", [x, w], { eps: 1e-5, oneP: false })], vector: true, perElement: ["pn"] });
  }
  {
    // 100 columns: the scalar passes only
    const x = inp("xs", ["B", "T", 100]), w = par("ws", [100]), b = par("bs", [100]);
    out.push({ name: "layernorm, 100 columns: no vector loops", outputs: [mkNode("layernorm", [x, w, b], { eps: 1e-5, oneP: false })], vector: false });
  }
  {
    // a parameter-only kernel (one block): a weight's update-like expression
    const w = par("wp", [128], "f32"), m = par("mp", [128], "f32");
    out.push({ name: "parameter-only, f32, 128 columns", outputs: [bin("sub", w, un("scale", un("rsqrt", un("addScalar", un("square", m), { value: 1e-3 })), { value: 0.01 }))], vector: true });
  }
  return out;
}

/** Buffers as the pipeline names them: params are weights, inputs graph inputs, others slots. */
const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `s_${n.key.slice(0, 10)}` };
const ctx: RenderContext = { ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch: "sm_90a" };

function group(c: Case, id: number): FusionGroup {
  const nodes = topo(c.outputs).filter((n) => !["input", "param", "slice", "full"].includes(n.op));
  return { id, kind: "row", nodes, outputs: c.outputs, roles: {}, anchor: nodes.find(isNorm) };
}

interface Rendered {
  c: Case;
  vec: KernelBody;
  scalar: KernelBody;
  /** Per launcher buffer: its node (an input, param or output), element count and dtype. */
  bufs: { node: Node; elems: number; dtype: DType; output: boolean }[];
}

const sizeOf = (n: Node): number => n.shape.reduce<number>((a, d) => a * (d === "B" ? B : d === "T" ? T : (d as number)), 1);

function render(c: Case, id: number): Rendered {
  const g = group(c, id);
  const vec = renderRowKernel(g, ctx);
  const scalar = renderRowKernel(g, ctx, { vectorize: false });
  expect(scalar.buffers).toEqual(vec.buffers);
  const byName = new Map<string, Node>();
  for (const n of topo(c.outputs)) if (n.op === "input" || n.op === "param") byName.set(`${n.op === "param" ? "weight" : "input"}:${n.attrs.name as string}`, n);
  for (const o of c.outputs) byName.set(`slot:${owner(o).buffer}`, o);
  const bufs = vec.buffers.map((b) => {
    const node = byName.get(`${b.kind}:${b.name}`);
    if (!node) throw new Error(`${c.name}: no node for buffer ${b.kind}:${b.name}`);
    return { node, elems: sizeOf(node), dtype: node.dtype, output: c.outputs.includes(node) };
  });
  return { c, vec, scalar, bufs };
}

const CT: Partial<Record<DType, string>> = { bf16: "__nv_bfloat16", f32: "float" };

/** Does the kernel synchronize its block (a norm's two passes)? Then it runs on an emulated block. */
const barriers = (kb: KernelBody): boolean => kb.body.includes("__syncthreads");

/** One program: every case's two kernels in a namespace each, and a driver that runs one of them. */
function program(rs: Rendered[]): string {
  // the kernels without their launchers (those call the CUDA runtime; the nvcc tests build them)
  // (a norm's dynamic shared row is g_smem: `__shared__` is `static` here, one block at a time)
  const kernel = (kb: KernelBody, name: string) => {
    const at = kb.body.indexOf('extern "C" cudaError_t launch_');
    if (at < 0) throw new Error("row.cu.hbs: no launcher found");
    const src = kb.body.slice(0, at).replaceAll(KERNEL_NAME, name).replace("extern __shared__ float s_pre[];", "float* const s_pre = g_smem;");
    return `namespace ${name} {\n${src}\n}`;
  };
  const parts = rs.flatMap((r, i) => [kernel(r.vec, `case${i}_vec`), kernel(r.scalar, `case${i}_scalar`)]);
  const dispatch = rs
    .flatMap((r, i) => [
      `  if (which == ${2 * i}) return run(case${i}_vec::case${i}_vec_kernel, bufs, rows, T, ${Number(r.vec.tiles.threads)}, ${barriers(r.vec)});`,
      `  if (which == ${2 * i + 1}) return run(case${i}_scalar::case${i}_scalar_kernel, bufs, rows, T, ${Number(r.scalar.tiles.threads)}, ${barriers(r.scalar)});`,
    ])
    .join("\n");
  return `// generated by tests/device/row-vec-host.test.ts
// the launch headers first: host_block.h's threadIdx / blockDim macros are for kernel code only
#include "strata/pdl.cuh"
#include "strata_launch.cuh"
#include "host_block.h"
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>
inline std::atomic<long long> g_vec_calls{0};
#define STRATA_HOST_VEC_COUNT g_vec_calls
inline thread_local uint3 g_block_idx{0, 0, 0};
inline uint3 g_grid_dim{1, 1, 1};
#define blockIdx (g_block_idx)
#define gridDim (g_grid_dim)
#define __launch_bounds__(...)
#include "strata_ops.cuh"
alignas(16) inline float g_smem[${Math.max(1, ...rs.map((r) => Number(r.vec.tiles.cols)))}];

${parts.join("\n\n")}

// kernels without barriers: every (block, thread) in turn; with (a norm's): each row a block of
// std::threads (host_block.h), one block per row. An elementwise kernel's loops stride over
// whatever grid they get (its launcher gives the vector loop a block per kThreads · kUnroll
// groups of 8 columns, the scalar loop strides over rows): here a grid of 2 blocks, so both
// loops take more than one pass and more than one block
template <class... P, std::size_t... I>
void run_rows(void (*k)(P...), void** bufs, int rows, int T, int threads, bool barriers, std::index_sequence<I...>) {
  using Args = std::tuple<P...>;
  const int blocks = barriers ? rows : std::min(rows, 2);
  g_grid_dim = uint3{(unsigned)blocks, 1, 1};
  for (int r = 0; r < blocks; ++r) {
    if (barriers) {
      hostblock::run_block(threads, [&] {
        g_block_idx = uint3{(unsigned)r, 0, 0};
        k(((std::tuple_element_t<I, Args>)bufs[I])..., rows, T);
      });
      continue;
    }
    for (int t = 0; t < threads; ++t) {
      g_block_idx = uint3{(unsigned)r, 0, 0};
      hostblock::t_idx = uint3{(unsigned)t, 0, 0};
      k(((std::tuple_element_t<I, Args>)bufs[I])..., rows, T);
    }
  }
}
template <class... P>
int run(void (*k)(P...), void** bufs, int rows, int T, int threads, bool barriers) {
  hostblock::g_dim = uint3{(unsigned)threads, 1, 1};
  run_rows(k, bufs, rows, T, threads, barriers, std::make_index_sequence<sizeof...(P) - 2>{});
  return 0;
}

int dispatch(int which, void** bufs, int rows, int T) {
${dispatch}
  return 1;
}

// usage: prog WHICH ROWS T IN OUT; IN: int32 nbufs, then per buffer int32 bytes, int32 shift (bytes
// added to a 64-byte aligned base), the bytes. OUT: every buffer's bytes, then int64 vector calls.
int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const int which = std::atoi(argv[1]), rows = std::atoi(argv[2]), T = std::atoi(argv[3]);
  FILE* f = std::fopen(argv[4], "rb");
  int n = 0;
  if (!f || std::fread(&n, 4, 1, f) != 1) return 2;
  std::vector<void*> bufs(n);
  std::vector<int> bytes(n);
  for (int i = 0; i < n; ++i) {
    int shift = 0;
    if (std::fread(&bytes[i], 4, 1, f) != 1 || std::fread(&shift, 4, 1, f) != 1) return 2;
    char* base = static_cast<char*>(std::aligned_alloc(64, ((bytes[i] + 64 + 63) / 64) * 64));
    bufs[i] = base + shift;
    if (std::fread(bufs[i], 1, bytes[i], f) != (size_t)bytes[i]) return 2;
  }
  std::fclose(f);
  if (dispatch(which, bufs.data(), rows, T) != 0) return 3;
  FILE* o = std::fopen(argv[5], "wb");
  for (int i = 0; i < n; ++i) std::fwrite(bufs[i], 1, bytes[i], o);
  const long long vec_calls = g_vec_calls.load();
  std::fwrite(&vec_calls, 8, 1, o);
  std::fclose(o);
  return 0;
}
`;
}

// bf16 helpers (round to nearest even, as __float2bfloat16)
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
function toBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff)) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
const fromBf16Bits = (b: number): number => {
  u32[0] = b << 16;
  return f32[0]!;
};

const nvcc = findNvcc();

describe.skipIf(!nvcc)("vectorized row kernels: bitwise equal to the scalar loop, on the host", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-device-rowvec-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const all = cases();
  const rendered = all.map(render);
  let build: BuildResult;
  beforeAll(async () => {
    build = await cachedNvcc(program(rendered), [INCLUDE_DIR, HERE], ["-x", "c++", "-std=c++20", "-O2", "-o", "prog"], "row vec host program");
  }, 300_000);

  it("renders the vector loop where legal, reading misaligned and broadcast operands per element", () => {
    for (const r of rendered) {
      const src = r.vec.body;
      expect(src.includes("st::ld8(") || src.includes("st::st8("), r.c.name).toBe(r.c.vector);
      expect(r.scalar.body.includes("st::ld8(") || r.scalar.body.includes("aligned16"), r.c.name).toBe(false);
      if (!r.c.vector) {
        expect(r.vec.body).toBe(r.scalar.body);
        continue;
      }
      expect(r.vec.tiles.vec).toBe(VEC);
      // inside the vector loops (a norm has one per pass; each j-loop closes at 6 spaces): the
      // operands read per element are exactly the expected ones
      const loops = [...src.matchAll(/for \(int j = 0;[^]*?\n {6}\}\n/g)].map((m) => m[0]);
      expect(loops.length, r.c.name).toBe(barriers(r.vec) ? 2 : 1);
      const perElement = new Set(loops.flatMap((loop) => [...loop.matchAll(/st::ld\((p\d+)/g)].map((m) => m[1]!)));
      const expected = new Set((r.c.perElement ?? []).map((name) => `p${r.bufs.findIndex((b) => b.node.attrs.name === name)}`));
      expect([...perElement].sort(), r.c.name).toEqual([...expected].sort());
    }
  });

  const rng = new Rng(`device-row-vec:${SEED}`);
  for (const [i, r] of rendered.entries()) {
    it(r.c.name, { timeout: 120_000 }, async () => {
      // fresh inputs, bf16 ones rounded to bf16 (what the kernel reads) for the reference too
      const values = r.bufs.map((b) => {
        const v = new Float64Array(b.elems);
        if (!b.output) for (let k = 0; k < b.elems; k++) v[k] = b.dtype === "bf16" ? fromBf16Bits(toBf16Bits(2 * rng.normal())) : Math.fround(2 * rng.normal());
        return v;
      });
      const encode = (b: Rendered["bufs"][number], v: Float64Array): Buffer => {
        if (b.dtype === "bf16") return Buffer.from(Uint16Array.from(v, toBf16Bits).buffer);
        return Buffer.from(Float32Array.from(v).buffer);
      };
      const decode = (b: Rendered["bufs"][number], raw: Buffer, at: number): Float64Array => {
        const n = b.elems;
        if (b.dtype === "bf16") return Float64Array.from(new Uint16Array(raw.buffer.slice(raw.byteOffset + at, raw.byteOffset + at + 2 * n)), fromBf16Bits);
        return Float64Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset + at, raw.byteOffset + at + 4 * n)));
      };
      const esize = (b: Rendered["bufs"][number]) => (b.dtype === "bf16" ? 2 : 4);
      const rows = r.vec.body.includes("B * T") ? B * T : 1;

      const runOnce = async (which: number, shifts: number[], tag: string) => {
        const inFile = path.join(work, `${i}-${tag}-in.bin`), outFile = path.join(work, `${i}-${tag}-out.bin`);
        const head = Buffer.alloc(4);
        head.writeInt32LE(r.bufs.length);
        const chunks: Buffer[] = [head];
        r.bufs.forEach((b, k) => {
          const data = encode(b, values[k]!);
          const h = Buffer.alloc(8);
          h.writeInt32LE(data.length, 0);
          h.writeInt32LE(shifts[k] ?? 0, 4);
          chunks.push(h, data);
        });
        writeFileSync(inFile, Buffer.concat(chunks));
        await execa(path.join(build.dir, "prog"), [String(which), String(rows), String(T), inFile, outFile]);
        const raw = readFileSync(outFile);
        let at = 0;
        const outs = r.bufs.map((b) => {
          const v = decode(b, raw, at);
          at += b.elems * esize(b);
          return v;
        });
        return { outs, vecCalls: Number(raw.readBigInt64LE(at)) };
      };

      const vectorPtrs = new Set(/st::aligned16\(([^)]*)\)/.exec(r.vec.body)?.[1]!.split(", ") ?? []);
      const scalar = await runOnce(2 * i + 1, [], "scalar");
      const vec = await runOnce(2 * i, [], "vec");
      expect(scalar.vecCalls).toBe(0);
      if (r.c.vector) expect(vec.vecCalls, msg(`${r.c.name}: aligned pointers must take the vector loop`)).toBeGreaterThan(0);
      // each buffer in turn one element off 16-byte alignment: the scalar loop (ld8 would trap)
      const misaligned = await Promise.all(r.bufs.map((b, k) => runOnce(2 * i, r.bufs.map((_, m) => (m === k ? esize(b) : 0)), `mis${k}`)));

      const same = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((x, k) => Object.is(x, b[k]!) || (Number.isNaN(x) && Number.isNaN(b[k]!)));
      r.bufs.forEach((b, k) => {
        if (!b.output) return;
        expect(same(vec.outs[k]!, scalar.outs[k]!), msg(`${r.c.name}: output ${k} vectorized ≠ scalar`)).toBe(true);
        misaligned.forEach((m, s) => {
          // a buffer the vector loop reads per element needs no alignment: the vector loop stays
          if (vectorPtrs.has(`p${s}`)) expect(m.vecCalls, msg(`${r.c.name}: buffer ${s} misaligned must take the scalar loop`)).toBe(0);
          else if (r.c.vector) expect(m.vecCalls, msg(`${r.c.name}: buffer ${s} (read per element) misaligned`)).toBeGreaterThan(0);
          expect(same(m.outs[k]!, scalar.outs[k]!), msg(`${r.c.name}: output ${k} with buffer ${s} misaligned ≠ scalar`)).toBe(true);
        });
      });

      // and the interpreter (float64) within tolerance
      const inputs: Record<string, { shape: number[]; data: Float64Array }> = {};
      const params: Record<string, { shape: number[]; data: Float64Array }> = {};
      r.bufs.forEach((b, k) => {
        if (b.output) return;
        const shape = b.node.shape.map((d) => (d === "B" ? B : d === "T" ? T : (d as number)));
        (b.node.op === "param" ? params : inputs)[b.node.attrs.name as string] = { shape, data: values[k]! };
      });
      const ref = evaluate(r.c.outputs, { inputs, params, bindings: { B, T }, precision: "f64" });
      r.c.outputs.forEach((o, j) => {
        const k = r.bufs.findIndex((b) => b.node === o);
        const want = ref[String(j)]!.data, got = vec.outs[k]!;
        let worst = 0;
        for (let e = 0; e < want.length; e++) worst = Math.max(worst, Math.abs(got[e]! - want[e]!) / (Math.abs(want[e]!) + 1));
        console.log(`[device/row-vec-host] ${r.c.name}: output ${j} (${o.dtype}) error ${worst.toExponential(2)} vs interpreter; threads ${r.vec.tiles.threads}`);
        expect(worst, msg(`${r.c.name}: output ${j}`)).toBeLessThanOrEqual(TOL[o.dtype]!);
      });
    });
  }
});
