/**
 * `strata train <arch.ts | build/NAME> --data FILE.tok …`: training on this machine's GPU, with
 * Node. For an architecture file, compiles it with the `train` entry (the same checks and
 * pipeline as `strata compile --train`, sized for --batch × --seq) into build/NAME and builds it;
 * for a project folder, uses it as it is (running `make` first when bin/model is not built).
 * Then runs the project's `bin/model train` (which needs no Node: the same run works on a GPU
 * machine without it), streams its progress (stderr) through, reads its `--json` records
 * (stdout, one per logged step and per evaluation) and prints a summary.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { execa } from "execa";
import { StrataError } from "../ir/errors.js";
import { findNvcc, nvccNotFoundError } from "../nvcc/driver.js";
import type { ModelDef } from "../dsl/model.js";
import { loadModel } from "./load.js";
import { checkOutDir, shownPath } from "./output.js";
import { emitChecked, writeAndBuild } from "./emit.js";
import { loadTuning } from "./tune.js";

/** `bin/model train`'s flags that `strata train` passes through: option key → flag. */
const PASS_THROUGH = {
  evalData: "--eval-data",
  steps: "--steps",
  batch: "--batch",
  seq: "--seq",
  accum: "--accum",
  lr: "--lr",
  minLr: "--min-lr",
  warmup: "--warmup",
  weightDecay: "--weight-decay",
  beta1: "--beta1",
  beta2: "--beta2",
  eps: "--eps",
  clip: "--clip",
  seed: "--seed",
  evalEvery: "--eval-every",
  evalBatches: "--eval-batches",
  saveEvery: "--save-every",
  logEvery: "--log-every",
  out: "--out",
  resume: "--resume",
  weights: "--weights",
} as const;
/** Flags whose values are paths (made absolute: bin/model runs with the caller's cwd, but a script may not). */
const PATH_FLAGS = new Set(["evalData", "out", "resume", "weights"]);

export interface TrainOptions {
  data: string;
  evalData?: string;
  steps: number;
  batch: number;
  seq?: number;
  accum?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  clip?: number;
  seed?: number;
  evalEvery?: number;
  evalBatches?: number;
  saveEvery?: number;
  logEvery?: number;
  /** Run folder: checkpoints, loss.csv, loss.svg (bin/model's --out). */
  out?: string;
  resume?: string;
  weights?: string;
  /** Architecture file only: where the compiled project goes (default build/NAME). */
  project?: string;
  /** Architecture file only: false = use build/NAME as it is (no compile). */
  compile?: boolean;
  arch?: "sm_90a" | "sm_90" | "sm_80";
  /** Layer kinds whose activations the backward recomputes (or "all"): less memory, about one more forward of them. */
  recompute?: readonly string[] | "all";
  /** A `strata tune` database (default: strata-tuning.json next to the architecture file, when there is one). */
  tuning?: string;
  /** In-place concats (passes/concat-alias.ts); on unless false. */
  inPlaceConcat?: boolean;
  /** Exact cast rewrites (passes/fold-casts.ts); on unless false. */
  foldCasts?: boolean;
  jobs?: number;
  check?: boolean;
  /** More `bin/model train` arguments, passed as they are (after `--` on the command line). */
  extra?: string[];
}

/** One `--json` record of bin/model train: a logged step or an evaluation. */
export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  mfu: number;
}
export interface EvalRecord {
  step: number;
  eval_loss: number;
  accuracy: number;
}

export interface TrainResult {
  project: string;
  args: string[];
  steps: StepRecord[];
  evals: EvalRecord[];
  /** Lines of stdout that were not JSON records (kept, not parsed). */
  other: string[];
}

export interface TrainIo {
  /** bin/model's stderr (progress), as it arrives. */
  progress?: (chunk: string) => void;
  /** Messages of this command (compiling, building). */
  log?: (line: string) => void;
}

/** The fields of a token file's header that decide the run: vocabulary and row length. */
export function tokenFileShape(file: string, flag = "--data"): { vocab: number; rowLength: number } {
  const abs = path.resolve(file);
  if (!existsSync(abs) || !statSync(abs).isFile()) throw new StrataError(`train: ${flag} ${file} does not exist`, undefined, "make token files with `strata data tokenize|corpus|probe`");
  const buf = Buffer.alloc(64);
  const fd = openSync(abs, "r");
  let n: number;
  try {
    n = readSync(fd, buf, 0, 64, 0);
  } finally {
    closeSync(fd);
  }
  if (n < 64 || buf.toString("latin1", 0, 8) !== "STRATATK")
    throw new StrataError(`train: ${flag} ${file} is not a Strata token file`, undefined, "make token files with `strata data tokenize|corpus|probe`");
  return { vocab: buf.readUInt32LE(24), rowLength: buf.readUInt32LE(28) };
}

interface ProjectManifest {
  name: string;
  vocabSize: number;
  maxSeqlen?: number;
  entries?: Record<string, unknown> | { name: string }[];
}

function hasTrainEntry(m: ProjectManifest): boolean {
  if (!m.entries) return false;
  return Array.isArray(m.entries) ? m.entries.some((e) => e.name === "train") : "train" in m.entries;
}


/** Compile `arch` with the train entry into `out` and build it: `strata compile --train`'s path. */
async function compileForTraining(def: ModelDef, archFile: string, out: string, o: TrainOptions, seq: number | undefined, log: (l: string) => void): Promise<void> {
  const maxSeq = seq ?? def.config.seqLen;
  // the tile choices of `strata tune`, as `strata compile` reads them
  const tuning = loadTuning(archFile, o.tuning);
  const { p, warning } = emitChecked(def, { maxBatch: o.batch, maxSeq, arch: o.arch ?? "sm_90a", train: true, ...(o.recompute ? { recompute: o.recompute } : {}), ...(tuning ? { tuning } : {}), ...(o.inPlaceConcat === false ? { inPlaceConcat: false } : {}), ...(o.foldCasts === false ? { foldCasts: false } : {}) });
  if (warning) log(warning);
  checkOutDir(out);
  await writeAndBuild(p, out, {
    arch: o.arch ?? "sm_90a",
    jobs: o.jobs,
    wrote: `${def.config.name}: compiled with the train entry (batch ${o.batch} × seq ${maxSeq}), ${p.kernels.length} kernels; wrote ${shownPath(out)}`,
    log,
  });
}

/** The project folder to train with: compiled (architecture file) or checked (folder), and built. */
export async function resolveTrainProject(target: string, o: TrainOptions, seq: number | undefined, log: (l: string) => void): Promise<string> {
  const abs = path.resolve(target);
  if (!existsSync(abs)) throw new StrataError(`train: ${target} does not exist`, undefined, "give an architecture file (.ts) or a project compiled with `strata compile --train` (build/NAME)");
  let dir = abs;
  if (statSync(abs).isFile()) {
    if (!abs.endsWith(".ts")) throw new StrataError(`train: ${target} is neither a project folder nor an architecture file (.ts)`);
    const def = await loadModel(abs, { check: o.check ?? true });
    dir = o.project ? path.resolve(o.project) : path.resolve("build", def.config.name);
    if (o.compile !== false) await compileForTraining(def, abs, dir, o, seq, log);
    else if (!existsSync(path.join(dir, "manifest.json")))
      throw new StrataError(`train: ${def.config.name} is not compiled yet (no ${shownPath(dir)}/manifest.json) and --no-compile was given`, undefined, `run: strata compile --train ${target}, or leave out --no-compile`);
  }
  const mf = path.join(dir, "manifest.json");
  if (!existsSync(mf)) throw new StrataError(`train: ${target} has no manifest.json`, undefined, "give the folder `strata compile --train` wrote (build/NAME), or the architecture file");
  const manifest = JSON.parse(readFileSync(mf, "utf8")) as ProjectManifest;
  if (!hasTrainEntry(manifest))
    throw new StrataError(`train: ${shownPath(dir)} was compiled without the train entry (its manifest lists no 'train')`, undefined, `recompile it: strata compile --train ARCH.ts -o ${shownPath(dir)}, or give the architecture file to strata train`);
  const bin = path.join(dir, "bin", "model");
  if (!existsSync(bin)) {
    if (!existsSync(path.join(dir, "Makefile"))) throw new StrataError(`train: ${bin} is missing: the project is not built`, undefined, `build it: make -C ${shownPath(dir)} (needs nvcc), on the machine with the GPU`);
    const nvcc = findNvcc();
    if (!nvcc) throw nvccNotFoundError();
    log(`building ${shownPath(dir)} (make)`);
    const r = await execa("make", ["-C", dir, `NVCC=${nvcc}`], { reject: false, all: true });
    if (r.exitCode !== 0) throw new StrataError(`train: make failed in ${shownPath(dir)}:\n${String(r.all).split("\n").slice(-20).join("\n")}`, undefined, `fix the error and run 'make -C ${shownPath(dir)}'`);
  }
  return dir;
}

/** bin/model train's arguments for these options (always --json: the summary is read from it). */
export function trainArgs(o: TrainOptions): string[] {
  const args = ["train", "--data", path.resolve(o.data)];
  for (const [key, flag] of Object.entries(PASS_THROUGH)) {
    const v = o[key as keyof typeof PASS_THROUGH];
    if (v === undefined) continue;
    args.push(flag, PATH_FLAGS.has(key) ? path.resolve(String(v)) : String(v));
  }
  args.push("--json", ...(o.extra ?? []));
  return args;
}

const NO_GPU = /cudaErrorNoDevice|cudaErrorInsufficientDriver|no CUDA-capable device|CUDA driver version is insufficient|cudaErrorSystemNotReady/;

export async function train(target: string, o: TrainOptions, io: TrainIo = {}): Promise<TrainResult> {
  const progress = io.progress ?? ((s: string) => process.stderr.write(s));
  const log = io.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const data = tokenFileShape(o.data);
  if (o.evalData) {
    const ev = tokenFileShape(o.evalData, "--eval-data");
    if (ev.vocab !== data.vocab) throw new StrataError(`train: --eval-data ${o.evalData} has vocabulary ${ev.vocab} but --data ${o.data} has ${data.vocab}`, undefined, "make both with the same tokenizer (or the same probe options)");
  }
  // the sequence length the project is compiled for: --seq, else a probe file's rows (rowLength − 1 predictions)
  const seq = o.seq ?? (data.rowLength > 0 ? data.rowLength - 1 : undefined);
  const dir = await resolveTrainProject(target, o, seq, log);
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as ProjectManifest;
  if (data.vocab > manifest.vocabSize)
    throw new StrataError(`train: ${o.data} has vocabulary ${data.vocab}, larger than ${manifest.name}'s ${manifest.vocabSize}`, undefined, `tokenise with at most ${manifest.vocabSize} ids, or give the model vocab ≥ ${data.vocab}`);

  const bin = path.join(dir, "bin", "model");
  // a token stream has no row length: without --seq, the rows are the compiled sequence length
  // (the model's seqLen when compiled here), which bin/model does not know (a resumed run keeps its own)
  const streamSeq = o.seq === undefined && data.rowLength === 0 && !o.resume ? manifest.maxSeqlen : undefined;
  const args = trainArgs(streamSeq !== undefined ? { ...o, seq: streamSeq } : o);
  const result: TrainResult = { project: dir, args, steps: [], evals: [], other: [] };
  const child = execa(bin, args, { reject: false, buffer: { stdout: false, stderr: false }, stdin: "ignore" });
  let pending = "";
  const onLine = (line: string) => {
    const t = line.trim();
    if (!t) return;
    let rec: Record<string, unknown> | undefined;
    if (t.startsWith("{")) {
      try {
        rec = JSON.parse(t) as Record<string, unknown>;
      } catch {
        rec = undefined;
      }
    }
    if (rec && typeof rec.eval_loss === "number") result.evals.push(rec as unknown as EvalRecord);
    else if (rec && typeof rec.loss === "number") result.steps.push(rec as unknown as StepRecord);
    else result.other.push(t);
  };
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  let errTail = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    progress(chunk);
    errTail = (errTail + chunk).slice(-4000);
  });
  const r = await child;
  if (pending) onLine(pending);
  if (r.signal) throw new StrataError(`train: ${shownPath(bin)} train was stopped by ${r.signal}`, undefined, o.out || o.resume ? "continue from the last checkpoint with --resume OUT" : undefined);
  if (r.failed && r.exitCode === undefined) {
    const why = (r as { code?: string }).code === "EACCES" ? "is not executable" : `could not be started (${r.shortMessage ?? "unknown error"})`;
    throw new StrataError(`train: ${bin} ${why}`, undefined, `rebuild it: make -C ${shownPath(dir)}`);
  }
  if (r.exitCode !== 0) {
    const lines = errTail.replace(/\r/g, "\n").trim().split("\n").filter((l) => l.trim());
    if (NO_GPU.test(errTail))
      throw new StrataError(`train: no usable GPU on this machine (${lines.filter((l) => NO_GPU.test(l)).pop()?.trim()})`, undefined, `bin/model train needs a CUDA GPU; copy ${shownPath(dir)} to a machine with one and run: bin/model ${args.slice(0, 3).join(" ")} … (it needs no Node)`);
    throw new StrataError(`train: ${shownPath(bin)} train failed (exit ${r.exitCode}): ${lines.slice(-3).join(" ")}`);
  }
  return result;
}

const fmt = (v: number | undefined, digits = 4) => (v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits));

/** The readable summary of a finished run. */
export function formatTrainSummary(r: TrainResult, o: Pick<TrainOptions, "out" | "batch" | "seq">): string {
  const lines: string[] = [];
  const s = r.steps;
  if (s.length) {
    const first = s[0]!;
    const last = s[s.length - 1]!;
    // throughput: the mean over the logged steps after the first (which includes warm-up)
    const steady = s.length > 1 ? s.slice(1) : s;
    const mean = (f: (x: StepRecord) => number) => steady.reduce((a, x) => a + f(x), 0) / steady.length;
    const minLoss = Math.min(...s.map((x) => x.loss));
    lines.push(`steps      ${last.step} (${s.length} logged)`);
    lines.push(`loss       ${fmt(first.loss)} at step ${first.step} → ${fmt(last.loss)} at step ${last.step} (lowest ${fmt(minLoss)})`);
    lines.push(`throughput ${mean((x) => x.tokens_per_s).toFixed(0)} tokens/s, MFU ${(100 * mean((x) => x.mfu)).toFixed(1)}% (mean of ${steady.length} step${steady.length === 1 ? "" : "s"})`);
    lines.push(`last step  lr ${last.lr.toExponential(2)}, gradient norm ${fmt(last.grad_norm, 3)}`);
  } else lines.push("steps      no step records (bin/model train printed no --json lines)");
  if (r.evals.length) {
    lines.push("evaluation   step      loss  accuracy");
    for (const e of r.evals) lines.push(`           ${String(e.step).padStart(6)}  ${fmt(e.eval_loss).padStart(8)}  ${(100 * e.accuracy).toFixed(2).padStart(7)}%`);
  }
  const out = o.out ? shownPath(path.resolve(o.out)) : undefined;
  if (out) lines.push(`run        ${out}: checkpoints (latest: ${out}/latest), loss.csv, loss.svg`);
  lines.push(`project    ${shownPath(r.project)} (bin/model forward|generate --weights ${out ?? "OUT"}/step-N/model.safetensors)`);
  return lines.join("\n");
}

const int = (what: string, min = 0) => (v: string) => {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be ${min > 0 ? "a positive" : "a non-negative"} whole number, got '${v}'`);
  return n;
};
const num = (what: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative number, got '${v}'`);
  return n;
};

type TrainCliOptions = Omit<TrainOptions, "extra"> & { json?: boolean };

export function registerTrainCommand(program: Command): void {
  program
    .command("train")
    .description("train a model on this machine's GPU: compile it with the train entry, build it, run bin/model train and summarise the run")
    .argument("<target>", "an architecture file (.ts; compiled with the train entry into build/NAME) or a project compiled with `strata compile --train`")
    .argument("[binArgs...]", "after --: more bin/model train arguments, passed as they are")
    .requiredOption("--data <file>", "training tokens (.tok from `strata data`)")
    .option("--eval-data <file>", "held-out tokens: evaluation loss and accuracy every --eval-every steps and at the end")
    .requiredOption("--steps <n>", "optimizer steps", int("--steps", 1))
    .requiredOption("--batch <n>", "rows per micro-batch", int("--batch", 1))
    .option("--seq <n>", "tokens per row (default: a probe file's row length − 1, else the model's seqLen)", int("--seq", 1))
    .option("--accum <k>", "micro-batches per step (gradient accumulation)", int("--accum", 1))
    .option("--lr <lr>", "peak learning rate (bin/model's default 3e-4)", num("--lr"))
    .option("--min-lr <lr>", "learning rate at the last step (cosine; default lr/10)", num("--min-lr"))
    .option("--warmup <n>", "linear warm-up steps", int("--warmup"))
    .option("--weight-decay <w>", "AdamW weight decay (0.1); none on A_log, D, dt_bias, norms, biases", num("--weight-decay"))
    .option("--beta1 <b>", "AdamW β1 (0.9)", num("--beta1"))
    .option("--beta2 <b>", "AdamW β2 (0.95)", num("--beta2"))
    .option("--eps <e>", "AdamW ε (1e-8)", num("--eps"))
    .option("--clip <c>", "global gradient-norm clip (1.0; 0 = off)", num("--clip"))
    .option("--seed <s>", "data order and (without --weights) weight init", int("--seed"))
    .option("--eval-every <k>", "evaluate every k steps (0 = only at the end)", int("--eval-every"))
    .option("--eval-batches <n>", "evaluation batches (default: the whole file)", int("--eval-batches"))
    .option("--save-every <k>", "checkpoint every k steps (and at the end)", int("--save-every"))
    .option("--log-every <n>", "log every n steps", int("--log-every", 1))
    .option("--out <dir>", "run folder: checkpoints, loss.csv, loss.svg")
    .option("--resume <dir>", "continue the run in DIR from its latest checkpoint, bit for bit")
    .option("--weights <file>", "start from these weights (safetensors) instead of the seeded init")
    .option("--project <dir>", "architecture file: where the compiled project goes (default build/NAME)")
    .option("--no-compile", "architecture file: train with its build/NAME as it is")
    .option("--arch <sm>", "GPU target when compiling: sm_90a (default), sm_90 or sm_80", "sm_90a")
    .option("--tuning <file>", "when compiling: tile choices from `strata tune` (default: strata-tuning.json next to the architecture file, when there is one)")
    .option("--recompute <kinds>", "when compiling: layer kinds whose activations the backward recomputes instead of keeping (e.g. mlp,attention, or all)", (v: string) =>
      v.trim() === "all" ? ("all" as const) : v.split(",").map((k) => k.trim()).filter(Boolean))
    .option("-j, --jobs <n>", "parallel nvcc jobs", int("--jobs", 1))
    .option("--json", "print the run's records and summary as one JSON object on stdout")
    .option("--no-check", "skip the TypeScript type check")
    .action(async (target: string, binArgs: string[], o: TrainCliOptions) => {
      if (!["sm_90a", "sm_90", "sm_80"].includes(o.arch ?? "sm_90a")) throw new StrataError(`unknown --arch '${o.arch}'`, undefined, "valid: sm_90a, sm_90, sm_80");
      if (o.resume && o.weights) throw new StrataError("train: give either --resume DIR (continue a run) or --weights FILE (start one from those weights), not both");
      const r = await train(target, { ...o, extra: binArgs });
      if (o.json) {
        const last = r.steps[r.steps.length - 1];
        console.log(JSON.stringify({ project: r.project, steps: r.steps, evals: r.evals, final: { step: last?.step, loss: last?.loss, eval: r.evals[r.evals.length - 1] } }));
      } else console.log(formatTrainSummary(r, o));
    });
}
