/**
 * What every rendered kernel hands to the project writer: its source, the buffers its launcher
 * takes (in order), and the plain-data spec that produced it. Every launcher has one signature,
 *   extern "C" cudaError_t launch_<name>(void* const* bufs, const StrataDims* d, cudaStream_t stream)
 * so the generated host schedule is a table of (launcher, buffer list).
 */
import { z } from "zod";
import type { Node } from "../ir/node.js";
import path from "node:path";
import type { BufferKind } from "./tensors.js";

export const BufferArgSchema = z.object({ kind: z.enum(["slot", "weight", "input", "state", "prep", "output"]), name: z.string() });
export type BufferArg = { kind: BufferKind | "output"; name: string };

export const KernelSpecSchema = z.object({
  name: z.string(),
  template: z.string(),
  group: z.number().int(),
  kind: z.string(),
  nodes: z.array(z.object({ op: z.string(), key: z.string(), scope: z.string().optional(), src: z.string().optional() })),
  tiles: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  buffers: z.array(BufferArgSchema),
  /** Runs once after weights are loaded (param prep) rather than in every forward. */
  once: z.boolean(),
});
export type KernelSpec = z.infer<typeof KernelSpecSchema>;

export function nodeSummary(nodes: readonly Node[], root: string): KernelSpec["nodes"] {
  const where = (file: string) => {
    const rel = path.relative(root, file);
    return rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
  };
  return nodes.map((n) => ({ op: n.op, key: n.key, ...(n.scope ? { scope: n.scope } : {}), ...(n.src ? { src: `${where(n.src.file)}:${n.src.line}` } : {}) }));
}
