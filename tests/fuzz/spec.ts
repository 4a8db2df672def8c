/**
 * Random model definitions for the front-end fuzzers, as plain data (`ModelSpec`): built in-process
 * with the DSL (`buildModel`) or written out as an architecture file (`specToSource`). Values are
 * mostly sizes the kernels take, sometimes small odd ones, sometimes plainly invalid (0, negative,
 * fractions, NaN, strings, unknown options), so both the accepting and the rejecting paths run.
 */
import fc from "fast-check";
import { allocateLayers, attention, init, layer, mamba, mamba2, mlp, model, ops, stack, type LayerDef, type ModelDef } from "../../compiler/dsl/index.js";

export type LayerSpec =
  | { kind: "mlp"; opts: Record<string, unknown> }
  | { kind: "attention"; opts: Record<string, unknown> }
  | { kind: "mamba2"; opts: Record<string, unknown> }
  | { kind: "mamba"; opts: Record<string, unknown> }
  /** A user's own mixer: `layer(name, {}, (ctx, x) => linear(silu(x), ctx.param(param, [dModel, dModel], …)))`. */
  | { kind: "custom"; opts: { name: unknown; param: unknown } };

export interface ModelSpec {
  name: unknown;
  vocab: unknown;
  dModel: unknown;
  seqLen?: unknown;
  norm?: unknown;
  tiedEmbeddings?: unknown;
  stack:
    | { mode: "pattern"; pattern: string; symbols: Record<string, LayerSpec> }
    | { mode: "ratios"; layers: unknown; attention?: unknown; mlp?: unknown; symbols: Record<string, LayerSpec> };
}

const bad = fc.constantFrom<unknown>(0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "8", null, 2 ** 40);

/**
 * Two kinds of spec: "clean" ones draw only sizes that fit together (so many build, run and emit),
 * "wild" ones mix in small odd values, bad values and unknown options (so the rejections run).
 */
type Mode = "clean" | "wild";

/** Mostly `good`, sometimes (wild) a small odd value, now and then a bad one. */
function dimOf(mode: Mode, good: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  if (mode === "clean") return good;
  return fc.oneof({ weight: 6, arbitrary: good }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 12 }) }, { weight: 1, arbitrary: bad });
}

/** Maybe leave the option out (the layer's default). */
function opt<T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(a, { nil: undefined, freq: 3 });
}

function recordOf(mode: Mode, entries: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const withUnknown = mode === "clean" ? fc.constant(undefined) : fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom("bogus", "hiden", "dstate") });
  return fc.tuple(fc.record(entries), withUnknown).map(([r, extra]) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v;
    if (extra) out[extra] = 1;
    return out;
  });
}

function layerSpecOf(mode: Mode): fc.Arbitrary<LayerSpec> {
  const dim = (good: fc.Arbitrary<unknown>) => dimOf(mode, good);
  const record = (entries: Record<string, fc.Arbitrary<unknown>>) => recordOf(mode, entries);
  const wild = mode === "wild";
  return fc.oneof(
    record({ hidden: dim(fc.constantFrom(32, 64, 128)), act: opt(fc.constantFrom<unknown>("relu2", "gelu", "swiglu", ...(wild ? ["tanh"] : []))) }).map((opts) => ({ kind: "mlp" as const, opts })),
    record({
      heads: dim(fc.constantFrom(1, 2, 4)),
      kvHeads: opt(dim(wild ? fc.constantFrom(1, 2) : fc.constant(1))),
      headDim: opt(dim(fc.constantFrom(16, 32, 64))),
      rope: opt(fc.oneof(fc.boolean(), fc.record({ fraction: opt(fc.constantFrom<unknown>(1, 0.5, ...(wild ? [0.3, 0, 2] : []))), theta: opt(dim(fc.constant(10000))) }))),
    }).map((opts) => ({ kind: "attention" as const, opts })),
    record({
      dState: opt(dim(fc.constantFrom(16, 64))),
      headDim: opt(dim(fc.constantFrom(16, 32, 64))),
      groups: opt(dim(fc.constantFrom(1, 2))),
      expand: opt(dim(fc.constantFrom(1, 2, 4))),
      dConv: opt(dim(fc.constantFrom(2, 4))),
      chunk: opt(dim(fc.constantFrom(4, 8, 64))),
    }).map((opts) => ({ kind: "mamba2" as const, opts })),
    fc
      .record({
        name: wild ? fc.oneof(fc.constantFrom("mix", "gated_mlp"), fc.string({ maxLength: 8 })) : fc.constantFrom("mix", "gated_mlp", "my-layer"),
        param: wild ? fc.oneof(fc.constantFrom("proj.weight", "w"), fc.string({ maxLength: 8 }), fc.constantFrom("a\n#include", "../w", "")) : fc.constantFrom("proj.weight", "w", "up_1"),
      })
      .map((opts) => ({ kind: "custom" as const, opts })),
    record({
      dState: opt(dim(fc.constantFrom(4, 16))),
      expand: opt(dim(fc.constantFrom(1, 2))),
      dtRank: opt(fc.oneof(fc.constant<unknown>("auto"), dim(fc.constantFrom(2, 4)))),
      dConv: opt(dim(fc.constantFrom(2, 4))),
    }).map((opts) => ({ kind: "mamba" as const, opts })),
  );
}

export const layerSpec = fc.oneof(layerSpecOf("clean"), layerSpecOf("wild"));

function nameOf(mode: Mode): fc.Arbitrary<unknown> {
  const valid = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  if (mode === "clean") return valid;
  return fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 2, arbitrary: fc.constantFrom<unknown>("../../escaped", "", "a\nb", "a/b", "x".repeat(70), "..", ".", "-o", 42, undefined) },
  );
}
export const nameSpec = fc.oneof(nameOf("clean"), nameOf("wild"));

const SYMBOLS = ["M", "*", "-", "G"];

function modelSpecOf(mode: Mode): fc.Arbitrary<ModelSpec> {
  const dim = (good: fc.Arbitrary<unknown>) => dimOf(mode, good);
  const wild = mode === "wild";
  return fc
  .record({
    name: nameOf(mode),
    vocab: dim(fc.constantFrom(32, 64)),
    dModel: dim(fc.constantFrom(16, 32, 64, 128)),
    seqLen: opt(dim(fc.constantFrom(8, 16, 64))),
    norm: opt(fc.constantFrom<unknown>("rmsnorm", "layernorm", "layernorm1p", ...(wild ? ["batchnorm"] : []))),
    tiedEmbeddings: opt(fc.boolean()),
    symbols: fc.dictionary(fc.constantFrom(...SYMBOLS, ...(wild ? ["MM"] : [])), layerSpecOf(mode), { minKeys: 1, maxKeys: 3 }),
    pattern: fc.array(fc.constantFrom(...SYMBOLS, " "), { minLength: 0, maxLength: 4 }).map((a) => a.join("")),
    /** Usually the pattern uses exactly the mapped symbols (indices into them, every one placed). */
    fromSymbols: fc.oneof({ weight: 5, arbitrary: fc.array(fc.nat(), { minLength: 0, maxLength: 3 }) }, { weight: wild ? 1 : 0, arbitrary: fc.constant(undefined) }),
    ratios: fc.option(fc.record({ layers: dim(fc.integer({ min: 1, max: 4 })), attention: opt(fc.constantFrom<unknown>(0, 0.25, 0.5, 1, ...(wild ? [1.5, -0.1] : []))), mlp: opt(fc.constantFrom<unknown>(0, 0.25, 0.5)) }), { nil: undefined, freq: wild ? 3 : 6 }),
  })
  .map((r) => ({
    name: r.name,
    vocab: r.vocab,
    dModel: r.dModel,
    seqLen: r.seqLen,
    norm: r.norm,
    tiedEmbeddings: r.tiedEmbeddings,
    stack: r.ratios ? { mode: "ratios" as const, ...r.ratios, symbols: wild ? r.symbols : placedSymbols(r.ratios, r.symbols) } : { mode: "pattern" as const, pattern: r.fromSymbols ? usePattern(Object.keys(r.symbols), r.fromSymbols) : r.pattern, symbols: r.symbols },
  }));
}

/** Half clean, half wild. */
export const modelSpec: fc.Arbitrary<ModelSpec> = fc.oneof(modelSpecOf("clean"), modelSpecOf("wild"));

/** Clean ratio specs map exactly the symbols Megatron's allocation places (reusing the drawn layers). */
function placedSymbols(r: { layers: unknown; attention?: unknown; mlp?: unknown }, symbols: Record<string, LayerSpec>): Record<string, LayerSpec> {
  let pattern: string;
  try {
    pattern = allocateLayers(r.layers as number, (r.attention ?? 0) as number, (r.mlp ?? 0) as number);
  } catch {
    return symbols;
  }
  const pool = Object.values(symbols);
  const out: Record<string, LayerSpec> = {};
  [...new Set(pattern)].forEach((c, i) => (out[c] = symbols[c] ?? pool[i % pool.length]!));
  return out;
}

/** Every mapped symbol once, then extra layers picked by `extra`. */
function usePattern(keys: string[], extra: number[]): string {
  return keys.join("") + extra.map((i) => keys[i % keys.length]).join("");
}

const custom = (o: { name: unknown; param: unknown }): LayerDef =>
  layer(o.name as string, {}, (ctx, x) => ops.linear(ops.silu(x), ctx.param(o.param as string, [ctx.config.dModel, ctx.config.dModel], init.normal(0.02))));

const FACTORY = { mlp, attention, mamba2, mamba, custom } as Record<string, (o: never) => LayerDef>;

/** Build the spec with the DSL, in this process (errors propagate as thrown). */
export function buildModel(s: ModelSpec): ModelDef {
  const symbols: Record<string, LayerDef> = {};
  for (const [sym, l] of Object.entries(s.stack.symbols)) symbols[sym] = FACTORY[l.kind]!(l.opts as never);
  const st =
    s.stack.mode === "pattern"
      ? stack({ pattern: s.stack.pattern, ...symbols })
      : stack({ layers: s.stack.layers as number, ratios: { attention: s.stack.attention as number, mlp: s.stack.mlp as number }, ...symbols });
  const o: Record<string, unknown> = { name: s.name, vocab: s.vocab, dModel: s.dModel, layers: st };
  for (const k of ["seqLen", "norm", "tiedEmbeddings"] as const) if (s[k] !== undefined) o[k] = s[k];
  return model(o as never);
}

/** A JS literal for a fuzzed value (NaN and Infinity have no JSON form). */
function lit(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (v === undefined) return "undefined";
  if (v && typeof v === "object" && !Array.isArray(v)) return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${lit(x)}`).join(", ")} }`;
  return JSON.stringify(v);
}

/** The spec as an architecture file importing the DSL from `dslPath`. */
export function specToSource(s: ModelSpec, dslPath: string): string {
  const sym = Object.entries(s.stack.symbols).map(([k, l]) =>
    l.kind === "custom"
      ? `    ${JSON.stringify(k)}: layer(${lit(l.opts.name)}, {}, (ctx, x) => ops.linear(ops.silu(x), ctx.param(${lit(l.opts.param)}, [ctx.config.dModel, ctx.config.dModel], init.normal(0.02)))),`
      : `    ${JSON.stringify(k)}: ${l.kind}(${lit(l.opts)}),`,
  );
  const head =
    s.stack.mode === "pattern"
      ? `    pattern: ${JSON.stringify(s.stack.pattern)},`
      : `    layers: ${lit(s.stack.layers)},\n    ratios: { attention: ${lit(s.stack.attention)}, mlp: ${lit(s.stack.mlp)} },`;
  const extra = (["seqLen", "norm", "tiedEmbeddings"] as const).filter((k) => s[k] !== undefined).map((k) => `  ${k}: ${lit(s[k])},`);
  return [
    `// @ts-nocheck — generated by tests/fuzz: values are deliberately of any type`,
    `import { attention, init, layer, mamba, mamba2, mlp, model, ops, stack } from ${JSON.stringify(dslPath)};`,
    `void attention; void mamba; void mamba2; void mlp; void layer; void ops; void init;`,
    ``,
    `export default model({`,
    `  name: ${lit(s.name)},`,
    `  vocab: ${lit(s.vocab)},`,
    `  dModel: ${lit(s.dModel)},`,
    ...extra,
    `  layers: stack({`,
    head,
    ...sym,
    `  }),`,
    `});`,
    ``,
  ].join("\n");
}
