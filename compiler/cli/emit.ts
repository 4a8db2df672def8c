/** The compile pipeline with every check `strata compile` runs first (shared by compile, check and train). */
import { checkKernelRules, type ModelDef } from "../dsl/model.js";
import { emitProject, writeProject, type EmittedProject } from "../codegen/project.js";
import { buildProject } from "../codegen/build.js";
import { replaceDir, shownPath, withDirLock } from "./output.js";
import type { TuningDb } from "../tune/db.js";
import { checkGraphSizes, checkTokenLimits, memoryWarning } from "./limits.js";
import type { Command } from "commander";

/**
 * The two graph rewrites a user may turn off, as options of every command that runs the compile
 * pipeline (compile, check, tune, train): `--no-in-place-concat`, `--no-fold-casts`. Commander
 * sets `inPlaceConcat` / `foldCasts` to true by default and false when given; emitChecked passes
 * only the false ones on.
 */
export function passOptions(cmd: Command, when = ""): Command {
  return cmd
    .option("--no-in-place-concat", `${when}keep the concat copy kernels of training graphs (by default the pieces of a concat — a fused projection's gradient — are written into its buffer by their own kernels)`)
    .option("--no-fold-casts", `${when}keep the training graph's exact cast round trips and stored widenings (by default they are folded, and widenings recomputed by each reader)`);
}

/** Everything `compile` checks before writing a file: kernel rules, sizes, then the whole emit pipeline. */
export function emitChecked(def: ModelDef, o: { maxBatch?: number; maxSeq?: number; maxTokens?: number; maxContext?: number; arch?: "sm_90a" | "sm_90" | "sm_80"; train?: boolean; recompute?: readonly string[] | "all"; tuning?: TuningDb; inPlaceConcat?: boolean; foldCasts?: boolean }) {
  const maxBatch = o.maxBatch ?? 1;
  const maxSeq = o.maxSeq ?? def.config.seqLen;
  checkTokenLimits(maxBatch, maxSeq, def.config.vocab);
  checkKernelRules(def);
  checkGraphSizes(def.toGraph());
  const p = emitProject(def, { maxBatch, maxSeq, maxTokens: o.maxTokens, maxContext: o.maxContext, arch: o.arch ?? "sm_90a", train: o.train ?? false, ...(o.recompute ? { recompute: o.recompute } : {}), ...(o.tuning ? { tuning: o.tuning } : {}), ...(o.inPlaceConcat === false ? { inPlaceConcat: false } : {}), ...(o.foldCasts === false ? { foldCasts: false } : {}) });
  const weightBytes = (p.manifest.weights as { bytes: number }[]).reduce((a, w) => a + w.bytes, 0);
  // training keeps an fp32 master copy and two fp32 moments of every weight (12 bytes per
  // parameter) besides the compute copies; the f32 gradients live in the train arena
  const trainBytes = o.train ? (p.manifest.weights as { bytes: number; dtype: string }[]).reduce((a, w) => a + (w.bytes / (w.dtype === "F32" ? 4 : 2)) * 12, 0) : 0;
  const warning = o.train
    ? memoryWarning(def.config.name, weightBytes + trainBytes, p.manifest.arenaBytes as number, "weights + fp32 master weights and AdamW moments", "lower --max-batch / --max-seq, recompute activations (--recompute), or the model's size")
    : memoryWarning(def.config.name, weightBytes, p.manifest.arenaBytes as number);
  return { p, weightBytes, warning };
}

/**
 * Write the project into `out` (in a temporary sibling renamed into place, under the folder's
 * lock) and build it unless `emitOnly`: the path `strata compile` and `strata train` share. A failed
 * build keeps the written sources in place, for `make -C DIR`. `wrote` is the line logged once
 * the sources are written.
 */
export async function writeAndBuild(
  p: EmittedProject,
  out: string,
  o: { arch: "sm_90a" | "sm_90" | "sm_80"; jobs?: number; emitOnly?: boolean; wrote: string; log: (l: string) => void },
): Promise<void> {
  let written = false;
  await withDirLock(out, () =>
    replaceDir(
      out,
      async (tmp) => {
        writeProject(p, tmp);
        written = true;
        o.log(o.wrote);
        if (o.emitOnly) return;
        const r = await buildProject(p, tmp, { arch: o.arch, jobs: o.jobs, displayDir: shownPath(out), log: o.log });
        o.log(`built ${shownPath(out)}/bin/model and lib/libmodel.so in ${r.seconds.toFixed(1)}s (${r.kernels.filter((k) => k.cached).length}/${r.kernels.length} kernels from cache)`);
      },
      () => written,
    ),
    { log: o.log },
  );
}
