/** Tiny Mamba-1 for tests and the GPU suite: mamba-8b's layout at d 128 (state 16, dt rank auto = 8). */
import { mamba, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-mamba",
  vocab: 512,
  dModel: 128,
  seqLen: 64,
  layers: stack({ pattern: "MMM", M: mamba({ dState: 16, expand: 2, dtRank: "auto", dConv: 4 }) }),
});
