/** The conv1d_grad kernel family (training): being written; rendering it is an error until then. */
import { StrataError } from "../ir/errors.js";
import type { KernelFamilyModule } from "./family.js";

export const conv1dGrad: KernelFamilyModule = {
  family: "conv1d_grad",
  render(g) {
    throw new StrataError(`codegen: the conv1d_grad kernel family is not implemented yet (${g.anchor?.op ?? "group"} ${g.id})`, g.anchor?.src);
  },
};
