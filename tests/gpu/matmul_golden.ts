/**
 * Golden cases for the matmul family's emitted kernels: every matmul-family group of the tiny
 * examples' training graphs (and tests/kernels/matmul-graphs.ts), rendered as the compiler emits
 * it, with random inputs and the interpreter's float64 output of the same group (its external
 * operands cut into graph inputs). tests/gpu/matmul_golden_test.cu runs each launcher and compares.
 *   npx tsx tests/gpu/matmul_golden.ts .tmp/matmul-golden
 * writes DIR/golden.inc (kernels + case table) and DIR/c<case>_<buffer>.bin (inputs, expected f32).
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { evalShape } from "../../compiler/ir/dims.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { mkNode, withInputs, type Node } from "../../compiler/ir/node.js";
import { isView, storageBase } from "../../compiler/ir/registry.js";
import { evaluate } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { fuse, type FusionGroup } from "../../compiler/passes/fuse.js";
import { familyModule, type RenderContext } from "../../compiler/kernels/index.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { KERNEL_NAME } from "../../compiler/codegen/templates.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import { extraGraphs, mlpTraining } from "../kernels/matmul-graphs.js";

const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `s_${n.key.slice(0, 8)}` };
const ctx: RenderContext = { ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch: "sm_90a" };
const bufName = (n: Node) => owner(storageBase(n)).buffer;

let seed = 12345;
const rand = () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return ((seed >>> 8) / 16777216) * 2 - 1;
};
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Round to bf16 (nearest even); returns the value and its 16 bits. */
function bf16(v: number): [number, number] {
  f32[0] = v;
  const b = u32[0]!;
  const r = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  u32[0] = r << 16;
  return [f32[0]!, r];
}

/** The group as a graph of its own: every operand from outside becomes an input named by its buffer. */
function cut(grp: FusionGroup): { graph: Graph; externals: Map<string, Node> } {
  const inside = new Set(grp.nodes.map((n) => n.key));
  const externals = new Map<string, Node>(); // buffer name → original base node
  const memo = new Map<string, Node>();
  const rebuild = (n: Node): Node => {
    const m = memo.get(n.key);
    if (m) return m;
    let r: Node;
    if (!inside.has(n.key) && !isView(n)) {
      const name = bufName(n);
      externals.set(name, storageBase(n));
      r = mkNode("input", [], { name }, { dtype: n.dtype, shape: [...n.shape] });
    } else r = withInputs(n, n.inputs.map(rebuild));
    memo.set(n.key, r);
    return r;
  };
  return { graph: { name: "group", outputs: { out: rebuild(grp.outputs[0]!) }, meta: {} } as Graph, externals };
}

const dir = process.argv[2] ?? ".tmp/matmul-golden";
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const sources: string[] = [];
const table: string[] = [];
const training = (def: typeof tinyTransformer) => autodiff(withTrainingLoss(def.toGraph(), { weighted: true }), { loss: "loss" });
const graphs: [string, Graph][] = [["tiny-transformer", training(tinyTransformer)], ["tiny-mamba", training(tinyMamba)], ["mlp", mlpTraining()], ...extraGraphs().map((g) => [g.name, g] as [string, Graph])];
let bytes = 0;
for (const [gname, g] of graphs) {
  for (const grp of fuse(g).groups) {
    const a = grp.anchor;
    if (!a || !(grp.kind === "matmul" || (grp.kind === "gemm" && a.inputs[1]!.op !== "param"))) continue;
    if (grp.outputs.length !== 1) continue;
    const kb = familyModule(grp.kind).render(grp, ctx);
    const { graph, externals } = cut(grp);
    // wgrads also with enough tokens to split (small weights); everything with a ragged token count
    const bindingsList = kb.tiles.path === "wgrad" ? [{ B: 2, T: 37 }, { B: 1, T: 1100 }] : [{ B: 2, T: 37 }];
    for (const bindings of bindingsList) {
      const i = table.length;
      const inputs: Record<string, Tensor> = {};
      const files: string[] = [];
      const kinds: number[] = [];
      const sizes: number[] = [];
      for (const b of kb.buffers) {
        const base = externals.get(b.name);
        const isOut = bufName(grp.outputs[0]!) === b.name;
        if (b.name.startsWith("@scratch")) {
          const r = kb.scratch!.find((s) => s.name === b.name)!;
          kinds.push(3), sizes.push(r.bytesPerToken * bindings.B * bindings.T + r.fixedBytes), files.push("");
          continue;
        }
        const node = isOut ? grp.outputs[0]! : base!;
        if (!node) throw new Error(`${gname} case ${i}: buffer ${b.name} is neither an operand nor the output`);
        const shape = evalShape(node.shape, bindings);
        const n = shape.reduce((x, y) => x * y, 1);
        const dt = node.dtype === "bf16" ? 0 : node.dtype === "f32" ? 1 : -1;
        if (dt < 0) throw new Error(`${gname} case ${i}: dtype ${node.dtype}`);
        if (isOut) {
          kinds.push(dt === 0 ? 1 : 2), sizes.push(n * (dt ? 4 : 2)), files.push(`c${i}_out.bin`);
          continue;
        }
        const data = new Float64Array(n);
        const raw = dt === 0 ? new Uint16Array(n) : new Float32Array(n);
        for (let j = 0; j < n; j++) {
          if (dt === 0) [data[j], raw[j]] = bf16(rand());
          else data[j] = raw[j] = Math.fround(rand());
        }
        inputs[b.name] = { shape, data } as Tensor;
        const f = `c${i}_${b.name.replace(/[^A-Za-z0-9_]/g, "_")}.bin`;
        writeFileSync(path.join(dir, f), Buffer.from(raw.buffer));
        bytes += raw.byteLength;
        kinds.push(0), sizes.push(raw.byteLength), files.push(f);
      }
      const out = evaluate(graph, { bindings, inputs }).out!;
      writeFileSync(path.join(dir, `c${i}_out.bin`), Buffer.from(Float32Array.from(out.data).buffer));
      bytes += out.data.length * 4;
      const name = `case${i}`;
      sources.push(`namespace ns_${name} {\n${kb.body.replaceAll(KERNEL_NAME, name).split("\n").filter((l) => !l.startsWith("#include")).join("\n")}\n}  // namespace ns_${name}`);
      const label = `${gname} ${kb.tiles.path} ${grp.nodes.map((m) => m.op).join(">")}`;
      table.push(`  {"${label}", ns_${name}::launch_${name}, ${bindings.B}, ${bindings.T}, ${kb.buffers.length}, {${kinds}}, {${sizes.map((s) => `${s}LL`)}}, {${files.map((f) => `"${f}"`)}}},`);
    }
  }
}
writeFileSync(
  path.join(dir, "golden.inc"),
  `// generated by tests/gpu/matmul_golden.ts — do not edit
#include <cuda_runtime.h>
#include "matmul.cuh"
#include "strata_common.cuh"
#include "strata_ops.cuh"
#include "strata_launch.cuh"
${sources.join("\n")}
// kinds: 0 input (file), 1 bf16 output, 2 f32 output (file: expected f32), 3 scratch
struct GoldenCase { const char* name; cudaError_t (*launch)(void* const*, const StrataDims*, cudaStream_t); int B, T, nbuf; int kind[12]; long long bytes[12]; const char* file[12]; };
static const GoldenCase kGolden[] = {
${table.join("\n")}
};
`,
);
console.log(`${dir}: ${table.length} cases, ${(bytes / 1e6).toFixed(1)} MB of data`);
