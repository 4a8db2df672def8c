/**
 * Tokenizers for `strata data`: byte-level (UTF-8 bytes, vocab 256), GPT-2 BPE (gpt-tokenizer's
 * r50k/gpt2 encoding, vocab 50257, <|endoftext|> = 50256) and any Hugging Face `tokenizer.json`
 * (@huggingface/tokenizers, with `tokenizer_config.json` beside it when present). Special-token
 * strings inside user text are encoded as plain text, never as control tokens.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";

export interface TextTokenizer {
  /** "byte", "gpt2" or "hf:<path>". */
  readonly name: string;
  readonly vocab: number;
  /** End-of-document id, if the tokenizer has one. */
  readonly eos?: number;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
}

export const TOKENIZER_HINT = 'valid: "byte", "gpt2", or a path to a Hugging Face tokenizer.json';

export function byteTokenizer(): TextTokenizer {
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: false });
  return {
    name: "byte",
    vocab: 256,
    encode: (text) => [...enc.encode(text)],
    decode: (ids) => dec.decode(Uint8Array.from(ids as ArrayLike<number>)),
  };
}

export async function gpt2Tokenizer(): Promise<TextTokenizer> {
  const g = await import("gpt-tokenizer/encoding/gpt2");
  return {
    name: "gpt2",
    vocab: g.vocabularySize,
    eos: 50256,
    encode: (text) => g.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() }),
    decode: (ids) => g.decode(Array.from(ids as ArrayLike<number>)),
  };
}

const EOS_CANDIDATES = ["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[EOS]", "[SEP]"];

export async function hfTokenizer(file: string): Promise<TextTokenizer> {
  if (!existsSync(file)) throw new StrataError(`tokenizer file ${file} does not exist`, undefined, TOKENIZER_HINT);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StrataError(`${file}: not valid JSON (${(e as Error).message})`, undefined, "pass a Hugging Face tokenizer.json");
  }
  if (!json || typeof json !== "object" || !("model" in json))
    throw new StrataError(`${file}: not a Hugging Face tokenizer.json (no "model" field)`, undefined, TOKENIZER_HINT);
  const cfgFile = path.join(path.dirname(file), "tokenizer_config.json");
  const config = existsSync(cfgFile) ? (JSON.parse(readFileSync(cfgFile, "utf8")) as Record<string, unknown>) : {};
  const { Tokenizer } = await import("@huggingface/tokenizers");
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new StrataError(`${file}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`);
  }
  const vocabMap = tok.get_vocab(true);
  let vocab = 0;
  for (const id of vocabMap.values()) vocab = Math.max(vocab, id + 1);
  const eosName = typeof config.eos_token === "string" ? config.eos_token : EOS_CANDIDATES.find((t) => vocabMap.has(t));
  const eos = eosName !== undefined ? vocabMap.get(eosName) : undefined;
  return {
    name: `hf:${file}`,
    vocab,
    ...(eos !== undefined ? { eos } : {}),
    encode(text) {
      const ids: unknown[] = tok.encode(text, { add_special_tokens: false }).ids;
      const bad = ids.findIndex((v: unknown) => typeof v !== "number" || !Number.isInteger(v) || v < 0);
      if (bad >= 0)
        throw new StrataError(`${file}: the tokenizer gave no id for token ${bad} of the text (an unknown token and no usable unk_token?)`);
      return ids as number[];
    },
    decode: (ids) => tok.decode(Array.from(ids as ArrayLike<number>), { clean_up_tokenization_spaces: false }),
  };
}

/** "byte" | "gpt2" | a path to tokenizer.json. */
export async function loadTokenizer(spec: string): Promise<TextTokenizer> {
  if (spec === "byte" || spec === "bytes") return byteTokenizer();
  if (spec === "gpt2" || spec === "gpt-2") return gpt2Tokenizer();
  if (spec.endsWith(".json")) return hfTokenizer(spec);
  throw new StrataError(`unknown tokenizer '${spec}'`, undefined, TOKENIZER_HINT);
}
