/**
 * Semantics of the rendered elementwise code without a GPU: every elementwise IR op (and a set of
 * random chains of them) is rendered through codegen's `elementwiseExpr` exactly as the row
 * kernels and GEMM epilogues render it (one `const float vN = …;` per node), compiled by nvcc
 * against the real device library (templates/include: the st:: math is __host__ __device__),
 * run on the host on fresh random inputs, and compared with the reference interpreter (float64).
 *
 * The program's source does not depend on the seed (inputs are a data file), so the build is
 * cached by content (tests/device/host-build.ts) and a rerun only runs it. The same functions are
 * also compiled for sm_90a (one kernel calls them all), so every rendered name must exist on the
 * device too. What the host run cannot see: the device forms of expf/erff/tanhf (CUDA's, not
 * glibc's) — those are compared with the interpreter by the GPU suite.
 *
 * Seed: STRATA_SEED (printed); the chains' structure has its own fixed seed so the source stays
 * cacheable.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { elementwiseExpr } from "../../compiler/codegen/expr.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { topo } from "../../compiler/ir/graph.js";
import { mkNode, type Attrs, type Node } from "../../compiler/ir/node.js";
import "../../compiler/ir/ops.js";
import { ELEMENTWISE_OPS, type ElementwiseOp } from "../../compiler/ir/registry.js";
import { evaluate, Rng } from "../../compiler/interp/interp.js";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import { cachedNvcc } from "./host-build.js";

const SEED = Number(process.env.STRATA_SEED ?? Date.now() % 1_000_000_007);
const msg = (what: string) => `${what} (seed ${SEED}; rerun with STRATA_SEED=${SEED})`;
console.log(`[device/elementwise-host] seed ${SEED} (STRATA_SEED=${SEED} reproduces this run)`);

/** Tolerances of this check: |got − ref| / (|ref| + 1), float32 evaluation against float64. */
const TOL = { op: 1e-6, bf16: 4e-3, chain: 2e-5 } as const;  // bf16: unit roundoff 2⁻⁸

const N = 4096;
// values at the edges of the ops' definitions (softplus's linear branch above 20, exp range, 0)
const SPECIALS = [0, -0, 1e-3, -1e-3, 0.5, -0.5, 8, -8, 19.9, 20.1, 25, -25, -30];
const input = (name: string): Node => mkNode("input", [], { name }, { dtype: "f32", shape: [N] });
const A = input("a"); // normal · 3 and the specials
const Bv = input("b"); // normal
const P = input("p"); // positive (log, sqrt, rsqrt, divisors)

/** Ops defined only on part of the line get positive operands. */
const POSITIVE_DOMAIN = new Set<ElementwiseOp>(["log", "sqrt", "rsqrt"]);
const BINARY = new Set<ElementwiseOp>(["add", "sub", "mul", "div"]);

/** Attribute variants per op (everything else: no attributes). */
const VARIANTS: Partial<Record<ElementwiseOp, Attrs[]>> = {
  scale: [{ value: 0.125 }, { value: -1.5 }, { value: 3 }, { value: 1e-7 }],
  addScalar: [{ value: 0.5 }, { value: -2.25 }, { value: 7 }, { value: 1e-7 }],
  gelu: [{}, { approximate: "tanh" }],
  cast: [{ to: "bf16" }, { to: "f32" }],
  activationGrad: [{ fn: "relu" }, { fn: "gelu" }, { fn: "gelu_tanh" }],
};

interface Case {
  name: string;
  node: Node;
  tol: number;
}

function opCases(): Case[] {
  const cases: Case[] = [];
  for (const op of ELEMENTWISE_OPS) {
    for (const attrs of VARIANTS[op] ?? [{}]) {
      const ins = BINARY.has(op) ? [A, op === "div" ? P : Bv] : [POSITIVE_DOMAIN.has(op) ? P : A];
      const label = Object.keys(attrs).length ? `${op} ${JSON.stringify(attrs)}` : op;
      cases.push({ name: label, node: mkNode(op, ins, attrs), tol: op === "cast" && attrs.to === "bf16" ? TOL.bf16 : TOL.op });
    }
  }
  return cases;
}

/** Random chains (fixed structure seed): nested ops, shared subexpressions, every op at least once. */
function chainCases(count: number): Case[] {
  const rng = new Rng("device-elementwise-chains:v1");
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)]!;
  const ops = ELEMENTWISE_OPS.filter((o) => o !== "cast");
  const positive = (u: Node) => mkNode("addScalar", [mkNode("square", [u])], { value: 0.25 });
  const apply = (op: ElementwiseOp, u: Node, v: Node): Node => {
    const attrs = pick(VARIANTS[op] ?? [{}]);
    if (op === "exp") return mkNode("exp", [mkNode("scale", [mkNode("tanh", [u])], { value: 3 })]);
    if (POSITIVE_DOMAIN.has(op)) return mkNode(op, [positive(u)], attrs);
    if (op === "div") return mkNode("div", [u, positive(v)]);
    if (BINARY.has(op)) return mkNode(op, [u, v]);
    // keep magnitudes moderate so float32 rounding, not overflow, is what is compared
    if (op === "square" || op === "relu2") return mkNode(op, [mkNode("tanh", [u])], attrs);
    return mkNode(op, [u], attrs);
  };
  // a chain that is zero or not finite on most of a probe input checks little: draw another
  const probe = inputs("probe");
  const toT = (v: Float32Array) => ({ shape: [N], data: Float64Array.from(v) });
  const informative = (n: Node): boolean => {
    const r = evaluate([n], { inputs: { a: toT(probe.a), b: toT(probe.b), p: toT(probe.p) } })["0"]!.data;
    let ok = 0;
    for (const v of r) if (v !== 0 && Number.isFinite(v)) ok++;
    return ok > N / 2;
  };
  const cases: Case[] = [];
  for (let c = 0; c < count; c++) {
    for (;;) {
      const pool: Node[] = [A, Bv, P];
      const depth = 3 + Math.floor(rng.uniform() * 4);
      for (let d = 0; d < depth; d++) {
        const op = c < ops.length && d === 0 ? ops[c]! : pick(ops);
        pool.push(apply(op, pool[pool.length - 1]!, pick(pool)));
      }
      const node = pool[pool.length - 1]!;
      if (!informative(node)) continue;
      cases.push({ name: `chain ${c}`, node, tol: TOL.chain });
      break;
    }
  }
  return cases;
}

const OPERANDS: Record<string, string> = { a: "a", b: "b", p: "p" };

/** One __host__ __device__ function per case, its body rendered node by node as the kernels do. */
function renderCase(c: Case, i: number): string {
  const order = topo([c.node]).filter((n) => n.op !== "input");
  const names = new Map<string, string>();
  const lines: string[] = [];
  order.forEach((n, k) => {
    const args = n.inputs.map((x) => (x.op === "input" ? OPERANDS[x.attrs.name as string]! : names.get(x.key)!));
    names.set(n.key, `v${k}`);
    lines.push(`  const float v${k} = ${elementwiseExpr(n, args)};`);
  });
  return `// ${c.name}\n__host__ __device__ float case_${i}(float a, float b, float p) {\n${lines.join("\n")}\n  return v${order.length - 1};\n}`;
}

function program(cases: Case[]): string {
  const fns = cases.map(renderCase).join("\n\n");
  const table = cases.map((_, i) => `case_${i}`).join(", ");
  return `// generated by tests/device/elementwise-host.test.ts
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "strata_ops.cuh"

${fns}

using CaseFn = float (*)(float, float, float);

// Device instantiation of every case: the rendered names must exist on the device too.
__global__ void device_cases(const float* a, const float* b, const float* p, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
${cases.map((_, i) => `  out[(long long)${i} * n + i] = case_${i}(a[i], b[i], p[i]);`).join("\n")}
}

int main(int argc, char** argv) {
  if (argc != 3) { std::fprintf(stderr, "usage: %s IN OUT\\n", argv[0]); return 2; }
  const CaseFn cases[] = { ${table} };
  const int ncases = ${cases.length};
  FILE* f = std::fopen(argv[1], "rb");
  int n = 0;
  if (!f || std::fread(&n, sizeof n, 1, f) != 1 || n <= 0) { std::fprintf(stderr, "bad input\\n"); return 2; }
  std::vector<float> a(n), b(n), p(n), out((size_t)ncases * n);
  if (std::fread(a.data(), 4, n, f) != (size_t)n || std::fread(b.data(), 4, n, f) != (size_t)n || std::fread(p.data(), 4, n, f) != (size_t)n) return 2;
  std::fclose(f);
  for (int c = 0; c < ncases; ++c)
    for (int i = 0; i < n; ++i) out[(size_t)c * n + i] = cases[c](a[i], b[i], p[i]);
  FILE* o = std::fopen(argv[2], "wb");
  if (!o || std::fwrite(out.data(), 4, out.size(), o) != out.size()) return 2;
  std::fclose(o);
  return 0;
}
`;
}

function inputs(seed: number | string = SEED): Record<"a" | "b" | "p", Float32Array> {
  const rng = new Rng(`device-elementwise:${seed}`);
  const a = new Float32Array(N), b = new Float32Array(N), p = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    a[i] = i < SPECIALS.length ? SPECIALS[i]! : 3 * rng.normal();
    b[i] = rng.normal();
    p[i] = Math.abs(2 * rng.normal()) + 0.05;
  }
  return { a, b, p };
}

const nvcc = findNvcc();

describe.skipIf(!nvcc)("rendered elementwise expressions, host build against the device library", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "strata-device-ew-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const ops = opCases();
  const chains = chainCases(32);
  const cases = [...ops, ...chains];

  it("covers every elementwise op of the registry", () => {
    const seen = new Set(ops.map((c) => c.node.op));
    expect([...ELEMENTWISE_OPS].filter((o) => !seen.has(o))).toEqual([]);
    const inChains = new Set(chains.flatMap((c) => topo([c.node]).map((n) => n.op)));
    expect(ELEMENTWISE_OPS.filter((o) => o !== "cast" && !inChains.has(o))).toEqual([]);
  });

  it("every op and chain matches the interpreter within float32 tolerance", { timeout: 300_000 }, async () => {
    const build = await cachedNvcc(program(cases), [INCLUDE_DIR], ["-std=c++17", "-O2", "-gencode", "arch=compute_90a,code=sm_90a", "-o", "prog"], "elementwise host program");
    const x = inputs();
    const inFile = path.join(work, "in.bin");
    const outFile = path.join(work, "out.bin");
    const header = new Int32Array([N]);
    writeFileSync(inFile, Buffer.concat([header, x.a, x.b, x.p].map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength))));
    await execa(path.join(build.dir, "prog"), [inFile, outFile]);
    const raw = readFileSync(outFile);
    const got = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    expect(got.length).toBe(cases.length * N);

    const toT = (v: Float32Array) => ({ shape: [N], data: Float64Array.from(v) });
    const ref = evaluate(cases.map((c) => c.node), { inputs: { a: toT(x.a), b: toT(x.b), p: toT(x.p) }, precision: "f64" });
    const failures: string[] = [];
    let checked = 0;
    const worstBy: Record<string, number> = {};
    cases.forEach((c, k) => {
      const r = ref[String(k)]!.data;
      let worst = 0, at = 0, nonzero = 0;
      for (let i = 0; i < N; i++) {
        const g = got[k * N + i]!, want = r[i]!;
        if (!Number.isFinite(want)) throw new Error(`${c.name}: reference is not finite at ${i} (inputs ${x.a[i]}, ${x.b[i]}, ${x.p[i]})`);
        if (want !== 0) nonzero++;
        const e = Number.isFinite(g) ? Math.abs(g - want) / (Math.abs(want) + 1) : Infinity;
        if (e > worst) [worst, at] = [e, i];
        checked++;
      }
      const kind = c.tol === TOL.bf16 ? "bf16" : c.tol === TOL.chain ? "chain" : "op";
      worstBy[kind] = Math.max(worstBy[kind] ?? 0, worst);
      expect(nonzero, msg(`${c.name}: the reference is all zeros`)).toBeGreaterThan(N / 4);
      if (worst > c.tol)
        failures.push(`${c.name}: error ${worst.toExponential(2)} > ${c.tol} at i=${at} (a=${x.a[at]}, b=${x.b[at]}, p=${x.p[at]}): got ${got[k * N + at]}, want ${r[at]}`);
    });
    console.log(`[device/elementwise-host] ${cases.length} cases × ${N} values (${build.cached ? "cached build" : "built"}); worst error: ` +
      Object.entries(worstBy).map(([k, v]) => `${k} ${v.toExponential(2)} (tol ${TOL[k as keyof typeof TOL]})`).join(", "));
    expect(failures, msg(`${failures.length} of ${cases.length} cases`)).toEqual([]);
    expect(checked).toBe(cases.length * N);
  });
});
