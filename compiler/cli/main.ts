/**
 * The `strata` command line. Each subcommand loads (and type-checks) a user's architecture file
 * and runs one stage of the pipeline. Errors print as `file:line:col: what was wrong` plus a hint,
 * without a stack trace unless --verbose.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { StrataError } from "../ir/errors.js";
import { toJsonText, graphNodes } from "../ir/graph.js";
import { shapeStr } from "../ir/dims.js";
import { formatDiagnostics, loadModel, typecheck } from "./load.js";
import { formatInfo, modelInfo, trainingMemory } from "./info.js";
import { deriveStep } from "../passes/derive-step.js";
import type { Graph } from "../ir/graph.js";
import { dumpProject } from "../codegen/project.js";
import { explainFusion } from "../passes/fuse.js";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelDef } from "../dsl/model.js";
import { checkOutDir, fsError, shownPath } from "./output.js";
import { registerInterop } from "./interop.js";
import { registerDataCommand } from "./data.js";
import { registerGenerateCommand } from "./generate.js";
import { registerTrainCommand } from "./train.js";
import { emitChecked, passOptions, writeAndBuild } from "./emit.js";
import { loadTuning, registerTuneCommand, tuningSummary } from "./tune.js";

let verbose = process.argv.includes("--verbose");

const RECOMPUTE_HELP = "train: layer kinds whose activations the backward recomputes instead of keeping (comma-separated, e.g. mlp,attention; or all)";

/** --recompute: "all" or a comma-separated list of layer kinds (checked against the model when compiling). */
function recomputeKinds(v: string): string[] | "all" {
  if (v.trim() === "all") return "all";
  const kinds = v.split(",").map((k) => k.trim()).filter(Boolean);
  if (!kinds.length) throw new InvalidArgumentError("expected layer kinds, e.g. mlp,attention, or all");
  return kinds;
}

function positiveInt(v: string): number {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number in decimal digits (e.g. 4096), got '${v}'`);
  return n;
}

/** The package's version (package.json next to compiler/). */
export function strataVersion(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../package.json");
  return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
}


export function formatGraph(g: Graph): string {
  const nodes = graphNodes(g);
  const id = new Map(nodes.map((n, i) => [n.key, `%${i}`]));
  const lines = nodes.map((n, i) => {
    const attrs = Object.entries(n.attrs)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(" ");
    const ins = n.inputs.map((x) => id.get(x.key)).join(", ");
    return `%${i} = ${n.op}(${ins})${attrs ? ` {${attrs}}` : ""} : ${n.dtype}${shapeStr(n.shape)}${n.scope ? `  # ${n.scope}` : ""}`;
  });
  for (const [k, n] of Object.entries(g.outputs)) lines.push(`output ${k} = ${id.get(n.key)}`);
  return lines.join("\n");
}

/** `info`'s last line: whether `compile` accepts the model (the same checks, nothing written). */
function compileStatus(def: ModelDef): string {
  try {
    const { p } = emitChecked(def, {});
    return `kernels    ${p.kernels.length} CUDA kernels (sm_90a); \`strata compile\` accepts this model`;
  } catch (e) {
    if (!(e instanceof StrataError)) throw e;
    const first = e.message.split("\n")[0]!.replace(/^\S+:\d+:\d+: /, "");
    return `kernels    \`strata compile\` rejects this model (the interpreter runs it): ${first}\n           run \`strata check\` for where and what to change`;
  }
}


export function buildProgram(): Command {
  const program = new Command();
  program
    .name("strata")
    .description("Compile language-model architectures written in TypeScript into fused CUDA.")
    .version(strataVersion(), "-V, --version", "print Strata's version")
    .option("--verbose", "print stack traces on errors")
    .showHelpAfterError()
    .exitOverride();

  program
    .command("info")
    .description("layer pattern, parameters, FLOPs per token, weight / KV-cache / state memory")
    .argument("<arch>", "architecture file (.ts) that default-exports model({...})")
    .option("--context <n>", "context length for FLOPs and memory (default: the model's seqLen)", positiveInt)
    .option("--batch <n>", "batch size for memory", positiveInt, 1)
    .option("--train", "also the memory of a train step at --batch × --context (weights, fp32 master weights and moments, the train arena with and without --recompute)")
    .option("--json", "print JSON")
    .option("--no-check", "skip the TypeScript type check")
    .action(async (arch: string, o: { context?: number; batch: number; train?: boolean; json?: boolean; check: boolean }) => {
      const def = await loadModel(arch, { check: o.check });
      const info = modelInfo(def, { context: o.context, batch: o.batch });
      if (o.train) info.training = trainingMemory(def, o.batch, o.context ?? def.config.seqLen);
      console.log(o.json ? JSON.stringify(info, null, 2) : `${formatInfo(info)}\n${compileStatus(def)}`);
    });

  program
    .command("ir")
    .description("print the Graph IR (text, or --json for the serialized form)")
    .argument("<arch>", "architecture file")
    .option("--json", "print the zod-checked JSON form")
    .addOption(new Option("--step", "print the one-token decode graph (explicit state in/out) instead").conflicts("prefill"))
    .addOption(new Option("--prefill", "print the prefill graph (full sequence plus outgoing state)").conflicts("step"))
    .option("--no-check", "skip the TypeScript type check")
    .action(async (arch: string, o: { json?: boolean; step?: boolean; prefill?: boolean; check: boolean }) => {
      const def = await loadModel(arch, { check: o.check });
      let g = def.toGraph();
      if (o.step || o.prefill) {
        const s = deriveStep(g);
        g = o.step ? s.step : s.prefill;
      }
      console.log(o.json ? toJsonText(g) : formatGraph(g));
    });

  program
    .command("check")
    .description("type-check an architecture file and validate the model it defines against every rule `compile` enforces (kernel shapes, sizes), without writing anything")
    .argument("<arch>", "architecture file")
    .option("--max-batch <n>", "largest batch the project would serve", positiveInt, 1)
    .option("--max-seq <n>", "longest sequence the project would serve (default: the model's seqLen)", positiveInt)
    .option("--max-tokens <n>", "largest batch × tokens of one call, which sizes the activation arena (default: max batch × max seq)", positiveInt)
    .option("--max-context <n>", "longest sequence the state caches can hold (default: the model's maxContext)", positiveInt)
    .option("--train", "also check the train entry (forward + loss + backward)")
    .option("--recompute <kinds>", RECOMPUTE_HELP, recomputeKinds)
    .action(async (arch: string, o: { maxBatch: number; maxSeq?: number; maxTokens?: number; maxContext?: number; train?: boolean; recompute?: string[] | "all"; inPlaceConcat?: boolean; foldCasts?: boolean }) => {
      const diags = await typecheck(arch);
      if (diags.length) {
        console.error(formatDiagnostics(diags));
        if (diags.some((d) => d.category === "error")) {
          process.exitCode = 1;
          return;
        }
      }
      const def = await loadModel(arch, { check: false });
      const g = def.toGraph();
      const { p, warning } = emitChecked(def, o); // the same pipeline and messages as compile, nothing written
      if (warning) console.error(warning);
      console.log(`${arch}: ok (${def.config.name}: ${def.pattern.length} layers, ${graphNodes(g).length} IR nodes, ${p.kernels.length} kernels)`);
    });

  program
    .command("compile")
    .description("compile to a deployable project folder (kernels, host schedule, runtime, Makefile) and build it with nvcc")
    .argument("<arch>", "architecture file")
    .option("-o, --out <dir>", "output folder (default: build/<model name>)")
    .option("--emit-only", "write the sources without building")
    .option("--explain", "print each fusion group and the reason for every rejected fusion")
    .option("--dump <dir>", "write the IR before and after fusion, kernel specs and sources to DIR")
    .option("--arch <sm>", "GPU target: sm_90a (default, Hopper), sm_90 or sm_80", "sm_90a")
    .option("--max-batch <n>", "largest batch the project serves", positiveInt, 1)
    .option("--max-seq <n>", "longest sequence the project serves (default: the model's seqLen)", positiveInt)
    .option("--max-tokens <n>", "largest batch × tokens of one call, which sizes the activation arena (default: max batch × max seq)", positiveInt)
    .option("--max-context <n>", "longest sequence the state caches can hold: prompt + generated tokens (default: the model's maxContext)", positiveInt)
    .option("--train", "also compile the train entry: forward + loss + backward, for `bin/model train`")
    .option("--recompute <kinds>", RECOMPUTE_HELP, recomputeKinds)
    .option("-j, --jobs <n>", "parallel nvcc jobs", positiveInt)
    .option("--tuning <file>", "tile choices from `strata tune` (default: strata-tuning.json next to the architecture file, when there is one)")
    .option("--no-check", "skip the TypeScript type check")
    .action(async (arch: string, o: { out?: string; emitOnly?: boolean; explain?: boolean; dump?: string; arch: string; maxBatch: number; maxSeq?: number; maxTokens?: number; maxContext?: number; train?: boolean; recompute?: string[] | "all"; jobs?: number; tuning?: string; inPlaceConcat?: boolean; foldCasts?: boolean; check: boolean }) => {
      if (!["sm_90a", "sm_90", "sm_80"].includes(o.arch)) throw new StrataError(`unknown --arch '${o.arch}'`, undefined, "valid: sm_90a, sm_90, sm_80");
      const dir = o.out ? path.resolve(o.out) : undefined;
      if (dir) checkOutDir(dir);
      if (o.dump) checkOutDir(path.resolve(o.dump), "--dump");
      const def = await loadModel(arch, { check: o.check });
      const tuning = loadTuning(arch, o.tuning);
      const { p, warning } = emitChecked(def, { maxBatch: o.maxBatch, maxSeq: o.maxSeq, maxTokens: o.maxTokens, maxContext: o.maxContext, arch: o.arch as "sm_90a", train: o.train, recompute: o.recompute, tuning, inPlaceConcat: o.inPlaceConcat, foldCasts: o.foldCasts });
      if (warning) console.error(warning);
      if (tuning) console.error(tuningSummary(p.program.kernels, tuning));
      if (o.explain) console.log(explainFusion(p.plan));
      if (o.dump) {
        const dump = path.resolve(o.dump);
        try {
          dumpProject(p, dump);
        } catch (e) {
          throw fsError(e, `write the --dump files to ${o.dump}`, "choose a folder you can write with --dump DIR");
        }
        console.error(`dumped the IR before and after fusion, fusion decisions, kernel specs, memory plan and ${p.kernels.length} kernel sources to ${shownPath(dump)}`);
      }
      const out = dir ?? path.resolve("build", def.config.name);
      if (!dir) checkOutDir(out);
      await writeAndBuild(p, out, {
        arch: o.arch as "sm_90a",
        jobs: o.jobs,
        emitOnly: o.emitOnly,
        wrote: `${def.config.name}: ${p.plan.groups.length} fused groups → ${p.kernels.length} kernels, arena ${((p.manifest.arenaBytes as number) / 2 ** 20).toFixed(2)} MiB; wrote ${shownPath(out)}`,
        log: (l) => console.error(l),
      });
    });

  program
    .command("emit")
    .description("print the emitted CUDA kernels (all, or one with --kernel)")
    .argument("<arch>", "architecture file")
    .option("--kernel <name>", "only this kernel (a name from `strata compile --explain` / the manifest), or a template name such as ssd")
    .option("--list", "list kernel names only")
    .option("--no-check", "skip the TypeScript type check")
    .action(async (arch: string, o: { kernel?: string; list?: boolean; check: boolean }) => {
      const def = await loadModel(arch, { check: o.check });
      const { p } = emitChecked(def, {});
      if (o.list) {
        for (const k of p.kernels) {
          const n = p.launches.filter((l) => l.kernel === k.name).length;
          console.log(`${k.name}  (${k.spec.template}, ${n} launch${n === 1 ? "" : "es"})`);
        }
        return;
      }
      const ks = o.kernel ? p.kernels.filter((k) => k.name === o.kernel || k.name.startsWith(`${o.kernel}_`)) : p.kernels;
      if (ks.length === 0) throw new StrataError(`no kernel named '${o.kernel}'`, undefined, `kernels: ${p.kernels.map((k) => k.name).join(", ")}`);
      for (const k of ks) console.log(`// ===== ${k.file}\n${k.source}`);
    });

  registerInterop(program);
  registerDataCommand(program);
  registerGenerateCommand(program);
  registerTrainCommand(program);
  registerTuneCommand(program);
  // the graph rewrites a user may turn off, on every command that runs the compile pipeline
  for (const [name, when] of [["compile", ""], ["check", ""], ["tune", ""], ["train", "when compiling: "]] as const)
    passOptions(program.commands.find((c) => c.name() === name)!, when);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  verbose = argv.includes("--verbose");
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof StrataError) {
      console.error(`error: ${e.message}`);
      if (verbose) console.error(e.stack);
      return 1;
    }
    const err = e as Error;
    console.error(`error: ${err.message}`);
    console.error(verbose ? err.stack : "(internal error; run with --verbose for the stack trace)");
    return 1;
  }
}

const isEntry = process.argv[1] && /strata(\.js)?$|cli[\\/]main\.ts$/.test(process.argv[1]);
// Not a top-level await: this module must finish evaluating before a user's architecture file
// loads, or a CommonJS-scoped user file (no "type": "module" near it) that imports the DSL would
// form a require(esm) cycle with it.
if (isEntry) void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
