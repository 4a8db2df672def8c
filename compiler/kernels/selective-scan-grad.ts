/**
 * The selective_scan_grad family (training): every gradient of one Mamba-1 selective scan — the
 * selectiveScanGrad nodes on the same inputs, one per `wrt` (u, delta, A, B, C, h0) — in one fixed
 * sequence of launches (include/selective_scan_bwd.cuh: chunk-start states, the reverse scan with
 * each chunk's states recomputed in registers, the sums over channel blocks and the batch;
 * deterministic, no float atomics). Δ arrives materialised (after softplus), A is read from memory.
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { enforce, need } from "./common.js";
import type { KernelFamilyModule } from "./family.js";
import { absorbScanGrads, scanGradDtypes, scanGradView } from "./ssd-grad.js";

const CHUNK = 16; // include/selective_scan_bwd.cuh kChunk
const THREADS = 256;
/** The state sizes the kernel takes (include/selective_scan_bwd.cuh Layout). */
export const SELECTIVE_SCAN_GRAD_DSTATES = [8, 16, 32, 64, 128] as const;
/** Channels per block (Layout::kChannels): 256/N, and 16 for N 64 / 128 (passes of 256/N). */
const channelsPerBlock = (N: number) => (N <= 32 ? THREADS / N : 16);
/** include/selective_scan_bwd.cuh selective_scan_grad_scratch_per_token / _fixed */
export const selectiveScanGradScratch = (D: number, N: number) => ({
  perToken: Math.ceil((D * N * 4) / CHUNK) + 2 * Math.ceil(D / channelsPerBlock(N)) * N * 4,
  fixed: 3 * D * N * 4 + 8 * 256,
});

const SEL_NAMES = ["u", "delta", "A", "B", "C", "h0"] as const;

export const selectiveScanGrad: KernelFamilyModule = {
  family: "selective_scan_grad",
  check(s) {
    const N = s.inputs[3]!.shape[1] as number;
    if (!(SELECTIVE_SCAN_GRAD_DSTATES as readonly number[]).includes(N))
      return { message: `the selective-scan backward kernel takes dState 8, 16, 32, 64 or 128 (got ${N})`, hint: "mamba({ dState: 16 })" };
    return scanGradDtypes(s, SEL_NAMES);
  },
  absorb: absorbScanGrads,
  render(g, ctx) {
    const s = g.anchor!;
    enforce(s, selectiveScanGrad.check!(s));
    const [, u, , A] = s.inputs as Node[];
    const D = u!.shape[2] as number;
    const N = A!.shape[1] as number;
    const bufs = new BufferTable();
    const view = scanGradView(g, ctx, bufs, SEL_NAMES);
    need(view.wrt.length > 0, s, "selectiveScanGrad: no gradient of the group is read");
    const sc = selectiveScanGradScratch(D, N);
    const scratch = bufs.scratch(sc.perToken, sc.fixed);
    const tiles = { chunk: CHUNK, dState: N };
    const body = renderTemplate("selective_scan_grad.cu.hbs", { ...view, dim: D, ...tiles, scratch, perToken: sc.perToken, fixed: sc.fixed, decls: bufs.declarations() });
    return { group: g, template: "selective_scan_grad.cu.hbs", body, buffers: bufs.args, tiles, scratch: bufs.scratchRequests };
  },
};
