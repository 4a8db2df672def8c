/**
 * Collects the buffers a kernel reads and writes as launcher arguments (bufs[i]) and renders
 * the C++ that addresses an element of a tensor reference from row and column indices.
 */
import type { BufferArg } from "./kernel.js";
import { CTYPE, type TensorRef } from "./tensors.js";

export class BufferTable {
  readonly args: BufferArg[] = [];
  private readonly index = new Map<string, number>();
  private readonly types: string[] = [];

  /** Index of the launcher argument holding `ref`'s buffer. */
  slot(ref: Pick<TensorRef, "kind" | "buffer" | "dtype">, output = false): number {
    const id = `${ref.kind}:${ref.buffer}`;
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.args.length;
      this.index.set(id, i);
      this.args.push({ kind: ref.kind, name: ref.buffer });
      this.types.push(CTYPE[ref.dtype]);
    }
    if (output) this.outputs.add(i);
    return i;
  }

  private readonly outputs = new Set<number>();

  /** `T* __restrict__ p3 = (T*)bufs[3];` lines for the launcher, const for inputs. */
  declarations(indent = "  "): string {
    return this.args
      .map((_, i) => {
        const t = this.types[i]!;
        const c = this.outputs.has(i) ? "" : "const ";
        return `${indent}${c}${t}* p${i} = static_cast<${c}${t}*>(bufs[${i}]);`;
      })
      .join("\n");
  }

  /** Kernel parameter list and the matching call arguments. */
  params(): string {
    return this.args.map((_, i) => `${this.outputs.has(i) ? "" : "const "}${this.types[i]}* __restrict__ p${i}`).join(", ");
  }

  callArgs(): string {
    return this.args.map((_, i) => `p${i}`).join(", ");
  }
}
