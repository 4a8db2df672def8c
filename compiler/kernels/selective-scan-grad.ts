/** The selective_scan_grad kernel family (training): being written; rendering it is an error until then. */
import { StrataError } from "../ir/errors.js";
import type { KernelFamilyModule } from "./family.js";

export const selectiveScanGrad: KernelFamilyModule = {
  family: "selective_scan_grad",
  render(g) {
    throw new StrataError(`codegen: the selective_scan_grad kernel family is not implemented yet (${g.anchor?.op ?? "group"} ${g.id})`, g.anchor?.src);
  },
};
