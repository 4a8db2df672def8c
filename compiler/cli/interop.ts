/**
 * Checkpoint commands: `import-hf`, `import-megatron`, `export-hf` (docs/INTEROP.md).
 */
import type { Command } from "commander";
import path from "node:path";

const rel = (p: string) => path.relative(process.cwd(), path.resolve(p)) || p;

export function registerInterop(program: Command): void {
  program
    .command("import-hf")
    .description("write a DSL architecture file (and Strata-named weights) from a Hugging Face checkpoint: NemotronH, Mamba2, Mamba, Llama")
    .argument("<model>", "a model folder (config.json + model.safetensors or a sharded index) or its config.json")
    .option("-o, --out <arch.ts>", "architecture file to write (default: <name>.ts)")
    .option("--weights-out <file>", "also write the weights as a Strata safetensors file (for bin/model forward --weights)")
    .option("--name <name>", "model name (default: from the folder name)")
    .action(async (input: string, o: { out?: string; weightsOut?: string; name?: string }) => {
      const { importHf } = await import("../interop/import.js");
      const r = importHf(input, o);
      for (const n of r.notes) console.error(`note: ${n}`);
      console.error(`${r.cls}: wrote ${rel(r.archFile!)}${r.weightsFile ? ` and ${rel(r.weightsFile)} (${r.tensors} tensors, ${r.params.toLocaleString("en-US")} parameters)` : ""}`);
    });

  program
    .command("import-megatron")
    .description("convert a Megatron-LM checkpoint (latest_checkpointed_iteration.txt + mp_rank_00/model_optim_rng.pt) to Strata-named safetensors, and an architecture file from its saved args")
    .argument("<dir>", "the checkpoint folder (or a model_optim_rng.pt)")
    .requiredOption("-o, --out <file>", "safetensors file to write")
    .option("--arch <arch.ts>", "architecture file to write from the saved args (default: next to --out, <name>.ts)")
    .option("--use-arch <arch.ts>", "map onto this existing architecture file instead of the saved args")
    .option("--name <name>", "model name for the written architecture file")
    .option("--allow-global <name...>", "also accept these pickle globals as inert values (never called), e.g. an enum class in the saved args")
    .action(async (dir: string, o: { out: string; arch?: string; useArch?: string; name?: string; allowGlobal?: string[] }) => {
      const { importMegatron } = await import("../interop/megatron.js");
      const r = await importMegatron(dir, o);
      for (const n of r.notes) console.error(`note: ${n}`);
      console.error(`Megatron-LM ${r.checkpoint}: wrote ${rel(r.weightsFile)} (${r.tensors} tensors, ${r.params.toLocaleString("en-US")} parameters)${r.archFile ? ` and ${rel(r.archFile)}` : ""}`);
    });

  program
    .command("export-hf")
    .description("write a Hugging Face checkpoint (config.json + model.safetensors) for a Strata model: NemotronH (Mamba-2 / attention / MLP), Mamba, Llama")
    .argument("<arch>", "architecture file")
    .requiredOption("--weights <file>", "Strata weights (safetensors with the model's parameter names)")
    .requiredOption("-o, --out <dir>", "folder to write")
    .option("--no-check", "skip the TypeScript type check")
    .action(async (arch: string, o: { weights: string; out: string; check: boolean }) => {
      const { loadModel } = await import("./load.js");
      const { exportHf } = await import("../interop/export.js");
      const def = await loadModel(arch, { check: o.check });
      const r = exportHf(def, o.weights, o.out);
      for (const n of r.notes) console.error(`note: ${n}`);
      console.error(`${def.config.name} → ${r.cls}: wrote ${rel(path.join(o.out, "config.json"))} and ${rel(path.join(o.out, "model.safetensors"))} (${r.tensors} tensors)`);
    });
}
