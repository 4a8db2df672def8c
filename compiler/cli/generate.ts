/**
 * `strata generate <build/NAME | arch.ts> --prompt "…"`: text in, text out, on a machine with a
 * GPU and Node. Tokenises the prompt (byte-level, GPT-2 BPE or a Hugging Face tokenizer.json),
 * runs the compiled project's `bin/model generate` (which samples on the GPU and streams token
 * ids, one line per step) and prints the decoded text as it streams, then the timings.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { execa } from "execa";
import { StrataError } from "../ir/errors.js";
import { loadTokenizer, TOKENIZER_HINT, type TextTokenizer } from "../data/tokenizers.js";
import { loadModel } from "./load.js";

export interface GenerateOptions {
  prompt: string;
  tokenizer: string;
  maxNew: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  sampleSeed?: number;
  weights?: string;
  seed?: number;
  /** Stop at the tokenizer's end-of-document token (when it has one). */
  stopAtEos: boolean;
}

/** The project folder (manifest.json + bin/model) for a folder or an architecture file. */
export async function resolveProject(target: string): Promise<string> {
  const abs = path.resolve(target);
  if (!existsSync(abs)) throw new StrataError(`generate: ${target} does not exist`, undefined, "give a compiled project folder (build/NAME) or an architecture file (.ts)");
  let dir = abs;
  if (statSync(abs).isFile()) {
    if (!abs.endsWith(".ts")) throw new StrataError(`generate: ${target} is neither a project folder nor an architecture file (.ts)`);
    const def = await loadModel(abs);
    dir = path.resolve("build", def.config.name);
    if (!existsSync(path.join(dir, "manifest.json"))) throw new StrataError(`generate: ${def.config.name} is not compiled yet (no ${path.relative(process.cwd(), dir)}/manifest.json)`, undefined, `run: strata compile ${target}`);
  }
  if (!existsSync(path.join(dir, "manifest.json"))) throw new StrataError(`generate: ${target} has no manifest.json`, undefined, "give the folder strata compile wrote (build/NAME)");
  if (!existsSync(path.join(dir, "bin", "model"))) throw new StrataError(`generate: ${path.join(dir, "bin", "model")} is missing: the project is not built`, undefined, `build it: make -C ${dir} (needs nvcc), on the machine with the GPU`);
  return dir;
}

/** Incremental detokenisation: the text of all ids so far, printed from where it last stopped (holding back a trailing partial UTF-8 sequence). */
export class TextStream {
  private ids: number[] = [];
  private shown = "";
  constructor(private readonly tok: TextTokenizer) {}
  push(id: number): string {
    this.ids.push(id);
    let text = this.tok.decode(this.ids);
    while (text.endsWith("\uFFFD")) text = text.slice(0, -1);
    if (!text.startsWith(this.shown)) {
      this.shown = text;
      return "";
    }
    const out = text.slice(this.shown.length);
    this.shown = text;
    return out;
  }
  get text(): string {
    return this.tok.decode(this.ids);
  }
}

export async function generate(target: string, o: GenerateOptions, write: (s: string) => void = (s) => process.stdout.write(s)): Promise<{ text: string; ids: number[]; stats: Record<string, number> }> {
  const dir = await resolveProject(target);
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as { vocabSize: number; name: string };
  const tok = await loadTokenizer(o.tokenizer);
  const ids = tok.encode(o.prompt);
  if (ids.length === 0) throw new StrataError("generate: the prompt is empty");
  const bad = ids.find((i) => i >= manifest.vocabSize);
  if (bad !== undefined) throw new StrataError(`generate: the ${tok.name} tokenizer gives id ${bad}, outside ${manifest.name}'s vocabulary of ${manifest.vocabSize}`, undefined, `use a tokenizer with at most ${manifest.vocabSize} ids (${TOKENIZER_HINT})`);
  const args = ["generate", "--prompt", ids.join(","), "--max-new", String(o.maxNew)];
  if (o.temperature !== undefined) args.push("--temperature", String(o.temperature));
  if (o.topK !== undefined) args.push("--top-k", String(o.topK));
  if (o.topP !== undefined) args.push("--top-p", String(o.topP));
  if (o.repetitionPenalty !== undefined) args.push("--repetition-penalty", String(o.repetitionPenalty));
  if (o.sampleSeed !== undefined) args.push("--sample-seed", String(o.sampleSeed));
  if (o.weights) args.push("--weights", path.resolve(o.weights));
  else if (o.seed !== undefined) args.push("--seed", String(o.seed));
  if (o.stopAtEos && tok.eos !== undefined && tok.eos < manifest.vocabSize) args.push("--stop", String(tok.eos));
  const stream = new TextStream(tok);
  const out: number[] = [];
  const child = execa(path.join(dir, "bin", "model"), args, { reject: false, buffer: { stdout: false, stderr: true } });
  let pending = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = /^step \d+: (-?\d+)/.exec(line);
      if (!m || m[1] === "-") continue;
      const id = Number(m[1]);
      if (id < 0) continue;
      out.push(id);
      write(stream.push(id));
    }
  });
  const r = await child;
  if (r.exitCode !== 0) throw new StrataError(`generate: ${path.join(dir, "bin", "model")} failed (exit ${r.exitCode}): ${String(r.stderr).trim().split("\n").slice(-3).join(" ")}`);
  const last = String(r.stderr).trim().split("\n").pop() ?? "{}";
  let stats: Record<string, number> = {};
  try {
    stats = JSON.parse(last) as Record<string, number>;
  } catch {
    stats = {};
  }
  return { text: stream.text, ids: out, stats };
}

const num = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number, got '${v}'`);
  return n;
};
const int = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer, got '${v}'`);
  return n;
};

export function registerGenerateCommand(program: Command): void {
  program
    .command("generate")
    .description("generate text with a compiled model on this machine's GPU: tokenise, run bin/model generate, stream the text")
    .argument("<target>", "a compiled project folder (build/NAME) or an architecture file (its build/NAME is used)")
    .requiredOption("--prompt <text>", "the prompt text")
    .option("--tokenizer <spec>", TOKENIZER_HINT, "byte")
    .option("--max-new <n>", "tokens to generate", int("--max-new"), 64)
    .option("--temperature <t>", "0 = greedy", num("--temperature"))
    .option("--top-k <k>", "keep the k likeliest tokens", int("--top-k"))
    .option("--top-p <p>", "keep the likeliest tokens up to this mass", num("--top-p"))
    .option("--repetition-penalty <r>", "> 1 discourages repeats", num("--repetition-penalty"))
    .option("--sample-seed <s>", "seed of the sampler", int("--sample-seed"))
    .option("--weights <file>", "safetensors weights (default: deterministic init, --seed)")
    .option("--seed <n>", "init seed when no --weights", int("--seed"))
    .option("--no-stop-at-eos", "keep going past the tokenizer's end-of-document token")
    .action(async (target: string, o: GenerateOptions) => {
      const r = await generate(target, o);
      process.stdout.write("\n");
      const s = r.stats;
      if (s.decodeTokensPerS !== undefined)
        console.error(`${r.ids.length} tokens; time to first token ${s.timeToFirstTokenMs?.toFixed(1)} ms, prefill ${s.prefillTokensPerS?.toFixed(0)} tok/s, decode ${s.decodeTokensPerS?.toFixed(0)} tok/s`);
    });
}
