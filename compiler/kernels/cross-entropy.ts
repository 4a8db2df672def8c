/** The cross_entropy kernel family (training): being written; rendering it is an error until then. */
import { StrataError } from "../ir/errors.js";
import type { KernelFamilyModule } from "./family.js";

export const crossEntropy: KernelFamilyModule = {
  family: "cross_entropy",
  render(g) {
    throw new StrataError(`codegen: the cross_entropy kernel family is not implemented yet (${g.anchor?.op ?? "group"} ${g.id})`, g.anchor?.src);
  },
};
