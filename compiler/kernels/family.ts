/**
 * What a kernel family is: one module per anchor (GEMM, attention, SSD, selective scan, conv1d,
 * embedding, cache append) plus the row kernel, each declaring
 *   - `absorb`: the prologue/epilogue work its kernel takes over (fusion patterns, optional parts
 *     allowed; a pattern that does not match is never an error, the work stays in another kernel
 *     and the log says why);
 *   - `check`: the shapes its kernel accepts (consulted by fusion, `strata check` and compile);
 *   - `render`: the kernel source, with its tile configuration as a typed value that is rendered
 *     into the template and written to the manifest from the same object.
 * The fusion driver (passes/fuse.ts) is generic over these modules.
 */
import type { Node } from "../ir/node.js";
import type { KernelFamily } from "../ir/registry.js";
import type { BufferArg } from "../codegen/kernel.js";
import type { ScratchRequest } from "../codegen/buffers.js";
import type { TensorRef } from "../codegen/tensors.js";
import type { RenderTuning } from "../tune/db.js";

export type GroupKind = KernelFamily | "param_prep";

export interface FusionGroup {
  id: number;
  kind: GroupKind;
  anchor?: Node;
  /** Every node this group computes, in topological order. */
  nodes: Node[];
  /** Nodes whose values leave the group: read by later groups or graph outputs. */
  outputs: Node[];
  /** Named operands of anchor templates (e.g. ssd: x, dtRaw, dtBias, A, B, C, D, hT). */
  roles: Record<string, Node>;
  /**
   * Decode (a GEMM whose launcher takes the GEMV at ≤ 8 rows): the row group (a norm) whose only
   * value is this GEMM's input; the GEMV computes it itself in its prologue (fuse.ts,
   * `decodePrologues`). Its reads are this group's reads too (plan-memory keeps them live).
   */
  prologue?: FusionGroup;
  /**
   * Decode: the group right after this GEMM (a conv1d step over a column slice of its output)
   * whose work the GEMV does in its store, per column, at ≤ 8 rows (fuse.ts, `decodePrologues`).
   * Its outputs are written by this group then (plan-memory makes them live from here).
   */
  decodeStep?: FusionGroup;
  /** Decode: this group's launch does nothing at ≤ 8 rows (its GEMM's GEMV computes it). */
  skipAtDecode?: boolean;
}

/** What fusion offers a family's `absorb`: the graph's use lists and the group being built. */
export interface FuseContext {
  /** Direct consumers of n. */
  uses(n: Node): Node[];
  /** Is n free to join a group (not yet grouped, not a source, view or parameter-only value)? */
  free(n: Node): boolean;
  /** Computed from parameters only (done once at load time). */
  paramOnly(n: Node): boolean;
  /** A graph output (must be stored). */
  isOutput(n: Node): boolean;
  /** Topological position. */
  position(n: Node): number;
  add(grp: FusionGroup, n: Node): void;
  /** Would adding n to grp make the groups' dependencies cyclic (a path out of the group and back)? */
  wouldCycle(grp: FusionGroup, n: Node): boolean;
  log(grp: FusionGroup, n: Node, accepted: boolean, what: string, reason: string): void;
  /**
   * Absorb the single-consumer, same-shape chain after the group's anchor while `allowed` says
   * yes (it returns the reason for a no). Other operands must be computed before the anchor;
   * `broadcast` says whether the kernel indexes operands of other shapes (row kernels do, the
   * GEMM epilogue only parameters).
   */
  absorbEpilogue(grp: FusionGroup, allowed: (n: Node) => string | undefined, opts?: { broadcast?: boolean }): void;
  /**
   * The walk under absorbEpilogue, for kernels with rules of their own: from `from` (default the
   * anchor) along single consumers, each next node e joins the group unless `veto(e, cur)` gives
   * the reason it cannot (logged). Stops at a graph output or a value with several consumers
   * (logged).
   */
  absorbChain(grp: FusionGroup, veto: (e: Node, cur: Node) => string | undefined, opts?: { from?: Node }): void;
}

/** How a rendered kernel reaches the tensors of its group. */
export interface RenderContext {
  ref(n: Node): TensorRef;
  /** The buffer that stores node n's value (group outputs). */
  outRef(n: Node): TensorRef;
  /** GPU target: decides e.g. wgmma (sm_90a only) vs mma.sync GEMM tiles. */
  arch: "sm_90a" | "sm_90" | "sm_80";
  /** Tuned tiles (`strata tune`): the GEMM families look their signature up here (tune/db.ts). */
  tuning?: RenderTuning;
  /**
   * The project's --max-tokens (rows of one call): the M the untuned GEMM tiles are chosen for
   * (tiles.ts defaultTiles). Absent: the fixed DEFAULT_* tiles.
   */
  maxTokens?: number;
}

/**
 * A decode step rendered for a GEMV's store (gemm.cu.hbs `Post`): the struct, the extra Params
 * fields it reads (C++ declarations) with the launcher expressions that fill them, and a check the
 * launcher runs before taking the GEMV (empty: none).
 */
export interface DecodeStepCode {
  code: string;
  fields: string[];
  args: string[];
  check: string;
}

/** A shape the family's kernel cannot take: what is wrong, and what would be valid. */
export interface Unsupported {
  message: string;
  hint?: string;
}

export interface KernelFamilyModule {
  family: KernelFamily;
  /** The shapes this family's kernel accepts, checked before anything is rendered. */
  check?(anchor: Node): Unsupported | undefined;
  absorb?(grp: FusionGroup, f: FuseContext): void;
  /**
   * Decode only (fuse's `decodePrologues`): can this group's kernel compute `producer`'s value
   * (its input, read by nothing else) itself? Undefined for yes, else the reason for no.
   */
  decodePrologue?(grp: FusionGroup, producer: FusionGroup): string | undefined;
  /**
   * Decode only: can this group's kernel also do `consumer`'s work (it reads this group's value)
   * in its store? Undefined for yes, else the reason for no; false: not a kind of work it takes
   * (nothing to log).
   */
  decodeStep?(grp: FusionGroup, consumer: FusionGroup): string | undefined | false;
  render(g: FusionGroup, ctx: RenderContext): KernelBody;
}

/** A rendered group before deduplication: the body names its kernel KERNEL_NAME. */
export interface KernelBody {
  group: FusionGroup;
  template: string;
  body: string;
  buffers: BufferArg[];
  tiles: Record<string, number | string | boolean>;
  /** Scratch memory for this launch (BufferTable.scratch): its args are slots named `@scratch<i>`. */
  scratch?: ScratchRequest[];
}

/** Provenance of a group's nodes; source paths inside `root` are relative to it (deterministic whatever the working directory). */
