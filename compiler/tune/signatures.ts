/**
 * The tuned kernels of a model: compile its Program once with a database that only listens, so
 * every signature the GEMM families look up (gemm.ts, matmul.ts: the same call compile makes) is
 * recorded. Distinct by key, in a deterministic order (family, path, key).
 */
import type { ModelDef } from "../dsl/model.js";
import { compileProgram, type ProgramOptions } from "../pipeline.js";
import { signatureKey, type KernelSignature, type TuningDb } from "./db.js";

export interface TunedKernel {
  key: string;
  sig: KernelSignature;
  /** Kernel groups (over all schedules) with this signature. */
  uses: number;
}

/** A database with no entries that records every lookup; `kernels()` lists what it saw. */
export function signatureRecorder(): { db: TuningDb; kernels(): TunedKernel[] } {
  const seen = new Map<string, TunedKernel>();
  const db: TuningDb = {
    entries: [],
    observe: (_arch, sig) => {
      const key = signatureKey(sig);
      const k = seen.get(key);
      if (k) k.uses++;
      else seen.set(key, { key, sig: { ...sig }, uses: 1 });
    },
  };
  const order = (k: TunedKernel) => `${k.sig.family}|${k.sig.path}|${k.key}`;
  return { db, kernels: () => [...seen.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)) };
}

/** The tuned kernels of a model compiled with these options (the CLI goes through compile's checks instead). */
export function tunedKernels(def: ModelDef, opts: Omit<ProgramOptions, "tuning">): TunedKernel[] {
  const r = signatureRecorder();
  compileProgram(def, { ...opts, tuning: r.db });
  return r.kernels();
}
