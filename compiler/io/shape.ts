/** Shared by the file readers and writers: element count of a shape, with a clear error. */
import { StrataError } from "../ir/errors.js";

export function numelOf(shape: readonly number[], ctx: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new StrataError(`${ctx}: shape [${shape.join(", ")}] must hold non-negative integers`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new StrataError(`${ctx}: shape [${shape.join(", ")}] has too many elements`);
  return n;
}
