/**
 * The reduce, cross_entropy, embedding_grad and conv1d_grad kernels exactly as the compiler emits
 * them for the training graphs of tiny examples, with random inputs and float64 references from
 * the interpreter, for tests/gpu/train_ops_emitted_test.cu (which runs every case on the GPU,
 * twice, and checks the values and that the two runs are bit-identical):
 *   npx tsx tests/gpu/train_ops_emit.ts .tmp/train_ops        (writes emitted.inc and data.bin)
 * Each case is one fusion group: its operands from outside the group become inputs (bf16 values
 * rounded before the reference sees them; ids and targets in range), its stored values are checked.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { evalShape } from "../../compiler/ir/dims.js";
import type { Node } from "../../compiler/ir/node.js";
import { mkNode, withInputs } from "../../compiler/ir/node.js";
import { isView, storageBase } from "../../compiler/ir/registry.js";
import { evaluate } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { familyModule } from "../../compiler/kernels/index.js";
import { KERNEL_NAME } from "../../compiler/codegen/templates.js";
import { fusedTraining, renderContext, TINY } from "../kernels/train-helpers.js";

const MINE = new Set(["reduce", "cross_entropy", "embedding_grad", "conv1d_grad"]);
const B = 2, T = 150; // 300 token rows: several chunks of the token reductions and of conv1d's dw
const MODELS = ["tiny-hybrid", "tiny-mamba", "tiny-transformer"];

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const DT: Record<string, number> = { bf16: 0, f32: 1, i32: 2 };
const bf16 = (x: number) => {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0]! + 0x7fff + ((u[0]! >> 16) & 1)) & 0xffff0000;
  return f[0]!;
};

/** Writes `dir`/emitted.inc and `dir`/data.bin; returns the number of cases. */
export function emitTrainOps(dir: string): number {
  seed = 12345;
  const chunks: Buffer[] = [];
  let offset = 0;
  const put = (a: Float32Array | Float64Array) => {
    const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(b);
    const at = offset;
    offset += b.byteLength;
    return at;
  };

  const sources: string[] = [];
  const table: string[] = [];
  const seen = new Set<string>();
  const ctx = renderContext();
  const owner = (n: Node) => ctx.ref(n).buffer;

  for (const model of MODELS) {
    const { plan } = fusedTraining(TINY[model]!);
    for (const grp of plan.groups) {
      if (!MINE.has(grp.kind)) continue;
      const kb = familyModule(grp.kind).render(grp, ctx);
      if (seen.has(kb.body)) continue;
      seen.add(kb.body);
      const inside = new Set(grp.nodes.map((n) => n.key));
      // operands from outside the group → inputs named by their buffer
      const external = new Map<string, Node>(); // buffer → storage node
      const memo = new Map<string, Node>();
      const sub = (n: Node): Node => {
        const m = memo.get(n.key);
        if (m) return m;
        let r: Node;
        if (inside.has(n.key)) r = withInputs(n, n.inputs.map(sub));
        else if (n.op === "full") r = n;
        else if (isView(n)) r = withInputs(n, [sub(n.inputs[0]!)]);
        else {
          const base = storageBase(n);
          const name = owner(base);
          external.set(name, base);
          r = mkNode("input", [], { name }, { dtype: base.dtype, shape: [...base.shape] });
        }
        memo.set(n.key, r);
        return r;
      };
      const outs = grp.outputs.length ? grp.outputs : [grp.nodes[grp.nodes.length - 1]!];
      const rebuilt = Object.fromEntries(outs.map((o) => [owner(o), sub(o)]));
      // inputs: ids and targets in range of what reads them, weights positive, the rest in (−1, 1)
      const range = new Map<string, number>();
      for (const n of grp.nodes) {
        if (n.op === "embeddingGrad") range.set(owner(storageBase(n.inputs[0]!)), n.attrs.vocab as number);
        if (n.op === "crossEntropy") range.set(owner(storageBase(n.inputs[1]!)), n.inputs[0]!.shape[2] as number);
        if (n.op === "crossEntropyGrad") range.set(owner(storageBase(n.inputs[2]!)), n.inputs[1]!.shape[2] as number);
      }
      const inputs: Record<string, Tensor> = {};
      const bind = { B, T };
      for (const [name, n] of external) {
        const shape = evalShape(n.shape, bind);
        const data = new Float64Array(numel(shape));
        const V = range.get(name);
        for (let i = 0; i < data.length; i++) {
          if (V !== undefined) data[i] = Math.floor(rand() * V) % V;
          else if (name === "weights") data[i] = 0.25 + 0.75 * rand();
          else data[i] = n.dtype === "bf16" ? bf16(rand() * 2 - 1) : Math.fround(rand() * 2 - 1);
        }
        // one hot token for the embedding gradient: a bucket large enough to be sorted, several ids never used
        if (V !== undefined && grp.kind === "embedding_grad") for (let i = 0; i < data.length; i += 3) data[i] = 7;
        inputs[name] = { shape, data };
      }
      const ref = evaluate(rebuilt, { bindings: bind, inputs, precision: "f64" });
      const i = table.length;
      const name = `case${i}`;
      const bufs = kb.buffers.map((b) => {
        const sc = (kb.scratch ?? []).find((r) => r.name === b.name);
        if (sc) return `{2, 1, ${sc.bytesPerToken * B * T + sc.fixedBytes}LL, -1, -1, 0}`;
        const ext = external.get(b.name);
        if (ext) {
          const t = inputs[b.name]!;
          return `{0, ${DT[ext.dtype]}, ${t.data.length}LL, ${put(new Float32Array(t.data))}LL, -1, 0}`;
        }
        const o = outs.find((x) => owner(x) === b.name);
        if (!o) throw new Error(`${name}: buffer ${b.name} is neither an operand nor an output`);
        const r = ref[b.name]!;
        const tol = o.dtype === "bf16" ? 1e-2 : 1e-4;
        return `{1, ${DT[o.dtype]}, ${r.data.length}LL, -1, ${put(new Float64Array(r.data))}LL, ${tol}}`;
      });
      const src = kb.body.replaceAll(KERNEL_NAME, name).split("\n").filter((l) => !l.startsWith("#include")).join("\n");
      sources.push(`namespace ns_${name} {\n${src}\n}  // namespace ns_${name}`);
      const what = `${model} ${grp.kind} ${grp.nodes.map((n) => n.op).join("→")} [${grp.anchor!.inputs[0]!.shape}]→[${grp.anchor!.shape}] (${kb.tiles.mode ?? ""})`;
      table.push(`  {"${what}", ns_${name}::launch_${name}, ${bufs.length}, {${bufs.join(", ")}}},`);
    }
  }

  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "data.bin"), Buffer.concat(chunks));
  writeFileSync(
    path.join(dir, "emitted.inc"),
    `// generated by tests/gpu/train_ops_emit.ts — do not edit
#include <cuda_runtime.h>
#include "train_ops.cuh"
#include "strata_launch.cuh"

${sources.join("\n\n")}

// role: 0 input, 1 output, 2 scratch; dtype: 0 bf16, 1 f32, 2 i32; data / ref: byte offsets in data.bin (f32 / f64)
struct EmittedBuf { int role, dtype; long long n, data, ref; double tol; };
struct EmittedCase { const char* name; cudaError_t (*launch)(void* const*, const StrataDims*, cudaStream_t); int nbuf; EmittedBuf bufs[16]; };
static const int kEmittedB = ${B}, kEmittedT = ${T};
static const EmittedCase kEmitted[] = {
${table.join("\n")}
};
`,
  );
  return table.length;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? ".tmp/train_ops";
  console.log(`${emitTrainOps(dir)} cases → ${dir}/emitted.inc and ${dir}/data.bin`);
}
