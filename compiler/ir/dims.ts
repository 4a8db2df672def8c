/**
 * Dimensions are numbers or symbolic expressions. A symbolic dim is a sum of named symbols and an
 * integer constant, kept in a canonical string form ("B", "T", "P+1"), so shapes compare with ===.
 * Batch and sequence are symbolic in the full graph; derive-step adds "P" (past length).
 */
export type Dim = number | string;

type Terms = { syms: Map<string, number>; c: number };

const SYM_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parse(d: Dim): Terms {
  if (typeof d === "number") return { syms: new Map(), c: d };
  const syms = new Map<string, number>();
  let c = 0;
  for (const raw of d.replace(/\s+/g, "").replace(/-/g, "+-").split("+")) {
    if (raw === "") continue;
    const neg = raw.startsWith("-");
    const body = neg ? raw.slice(1) : raw;
    if (/^\d+$/.test(body)) c += neg ? -Number(body) : Number(body);
    else if (SYM_RE.test(body)) syms.set(body, (syms.get(body) ?? 0) + (neg ? -1 : 1));
    else throw new Error(`bad symbolic dim '${d}'`);
  }
  return { syms, c };
}

function render(t: Terms): Dim {
  const parts: string[] = [];
  for (const name of [...t.syms.keys()].sort()) {
    const k = t.syms.get(name)!;
    if (k === 0) continue;
    const term = Math.abs(k) === 1 ? name : `${Math.abs(k)}${name}`;
    if (Math.abs(k) !== 1) throw new Error(`symbolic dim with coefficient ${k}·${name} is not supported`);
    parts.push(k < 0 ? `-${term}` : parts.length ? `+${term}` : term);
  }
  if (parts.length === 0) return t.c;
  if (t.c !== 0) parts.push(t.c < 0 ? `${t.c}` : `+${t.c}`);
  return parts.join("");
}

export function canonDim(d: Dim): Dim {
  return render(parse(d));
}

export function dimAdd(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  for (const [k, v] of y.syms) x.syms.set(k, (x.syms.get(k) ?? 0) + v);
  x.c += y.c;
  return render(x);
}

export function dimStr(d: Dim): string {
  return String(d);
}

export function shapeStr(s: readonly Dim[]): string {
  return `[${s.map(dimStr).join(", ")}]`;
}

/** Evaluate a dim with concrete values for its symbols. */
export function evalDim(d: Dim, bindings: Readonly<Record<string, number>>): number {
  if (typeof d === "number") return d;
  const t = parse(d);
  let v = t.c;
  for (const [k, n] of t.syms) {
    const b = bindings[k];
    if (b === undefined) throw new Error(`no value bound for symbolic dim '${k}' (in '${d}')`);
    v += n * b;
  }
  return v;
}

export function evalShape(s: readonly Dim[], bindings: Readonly<Record<string, number>>): number[] {
  return s.map((d) => evalDim(d, bindings));
}

/** Symbols referenced by a dim. */
export function dimSymbols(d: Dim): string[] {
  return typeof d === "number" ? [] : [...parse(d).syms.keys()];
}

/**
 * Product of a shape as (constant, sorted list of symbolic factors); two shapes hold the same
 * number of elements for every binding iff these are equal. Used by reshape's rule.
 */
export function shapeVolume(s: readonly Dim[]): { c: number; syms: string[] } {
  let c = 1;
  const syms: string[] = [];
  for (const d of s) {
    if (typeof d === "number") c *= d;
    else syms.push(String(canonDim(d)));
  }
  return { c, syms: syms.sort() };
}

/** Replace symbols by dims, e.g. substDim("T", {T: 1}) = 1, substDim("P+1", {P: "S"}) = "S+1". */
export function substDim(d: Dim, subs: Readonly<Record<string, Dim>>): Dim {
  if (typeof d === "number") return d;
  const t = parse(d);
  const out: Terms = { syms: new Map(), c: t.c };
  for (const [k, n] of t.syms) {
    const s = subs[k];
    if (s === undefined) {
      out.syms.set(k, (out.syms.get(k) ?? 0) + n);
      continue;
    }
    const r = parse(s);
    out.c += n * r.c;
    for (const [k2, n2] of r.syms) out.syms.set(k2, (out.syms.get(k2) ?? 0) + n * n2);
  }
  return render(out);
}
