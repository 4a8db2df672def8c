/**
 * Collects the buffers a kernel reads and writes as launcher arguments (bufs[i]) and renders
 * the C++ that addresses an element of a tensor reference from row and column indices.
 */
import type { BufferArg } from "./kernel.js";
import type { DType } from "../ir/node.js";
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

  /** Scratch the kernel asked for (see `scratch`), in slot order. */
  readonly scratchRequests: ScratchRequest[] = [];

  /**
   * Index of a launcher argument pointing at scratch memory for this launch only: `bytesPerToken`
   * × the compiled max tokens (B·T) + `fixedBytes`, 256-byte aligned, contents undefined on entry.
   * The pipeline places it in the schedule's arena, live during this group's launch alone (so it
   * costs nothing between kernels). `dtype` only types the pointer (p<i> is `T*`).
   */
  scratch(bytesPerToken: number, fixedBytes = 0, dtype: DType = "f32"): number {
    if (!(bytesPerToken >= 0 && fixedBytes >= 0 && bytesPerToken + fixedBytes > 0)) throw new Error(`scratch: bytes per token ${bytesPerToken} and fixed bytes ${fixedBytes} must be ≥ 0 and not both 0`);
    const name = `@scratch${this.scratchRequests.length}`;
    this.scratchRequests.push({ name, bytesPerToken, fixedBytes });
    const i = this.args.length;
    this.index.set(`slot:${name}`, i);
    this.args.push({ kind: "slot", name });
    this.types.push(CTYPE[dtype]);
    this.outputs.add(i);
    return i;
  }

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

/** Scratch memory a kernel asked for; `name` is a placeholder the pipeline renames per group. */
export interface ScratchRequest {
  name: string;
  bytesPerToken: number;
  fixedBytes: number;
}
