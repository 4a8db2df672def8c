/** The attention_grad kernel family (training): being written; rendering it is an error until then. */
import { StrataError } from "../ir/errors.js";
import type { KernelFamilyModule } from "./family.js";

export const attentionGrad: KernelFamilyModule = {
  family: "attention_grad",
  render(g) {
    throw new StrataError(`codegen: the attention_grad kernel family is not implemented yet (${g.anchor?.op ?? "group"} ${g.id})`, g.anchor?.src);
  },
};
