/**
 * A restricted unpickler for torch checkpoints. It reads the pickle opcodes of protocols 0–5 that
 * `torch.save` emits and rebuilds plain values: None/bool/int/float/str/bytes, lists, tuples
 * (arrays), dicts and OrderedDicts (Maps), tensors (`TorchTensor`: storage, offset, shape,
 * stride — no data is read here) and argparse.Namespace (a plain object).
 *
 * It never calls anything. A GLOBAL opcode resolves only against the table below (tensor
 * rebuilds, storage types, containers); everything else is an error naming the global, except
 * names the caller declares inert (`allow`), which become `Opaque` records of their arguments.
 */
import { StrataError } from "../ir/errors.js";
import type { SrcDtype } from "./tensor-io.js";

export interface Storage {
  kind: "storage";
  key: string;
  dtype: SrcDtype;
  numel: number;
  location: string;
}

export class TorchTensor {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  get isContiguous(): boolean {
    let s = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.stride[i] !== s) return false;
      s *= this.shape[i]!;
    }
    return true;
  }
}

/** A value of an allowed-but-inert global (e.g. a numpy array in the RNG state): kept, never run. */
export class Opaque {
  state: unknown;
  constructor(
    readonly global: string,
    readonly args: unknown[],
  ) {}
}

/** A global as a value (e.g. `torch.bfloat16` in the args); also what REDUCE / NEWOBJ dispatch on. */
class Global extends Opaque {
  constructor(readonly name: string) {
    super(name, []);
  }
}

class Mark {}
const MARK = new Mark();

/** torch storage classes → element dtype. */
const STORAGES: Record<string, SrcDtype> = {
  "torch.BFloat16Storage": "BF16",
  "torch.HalfStorage": "F16",
  "torch.FloatStorage": "F32",
  "torch.DoubleStorage": "F64",
  "torch.LongStorage": "I64",
  "torch.IntStorage": "I32",
  "torch.ShortStorage": "I16",
  "torch.CharStorage": "I8",
  "torch.ByteStorage": "U8",
  "torch.BoolStorage": "BOOL",
  "torch.UntypedStorage": "U8",
  "torch.storage.UntypedStorage": "U8",
};

/** Globals the unpickler knows how to rebuild (never by calling them). */
export const KNOWN_GLOBALS = [
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch._tensor._rebuild_from_type_v2",
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
  "collections.OrderedDict",
  "builtins.set",
  "builtins.frozenset",
  "argparse.Namespace",
  ...Object.keys(STORAGES),
] as const;

/**
 * Inert by default: plain data that appears in Megatron checkpoints beside the weights (torch
 * dtypes and enums in the args, numpy RNG state, Transformer Engine's BytesIO extra state).
 */
export const DEFAULT_INERT = [
  "torch.bfloat16", "torch.float16", "torch.float32", "torch.float64", "torch.int64", "torch.int32", "torch.uint8", "torch.bool", "torch.device", "torch.Size",
  "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
  "_io.BytesIO", "_codecs.encode",
  // enums Megatron-LM stores in its saved args (get_model sets args.model_type = ModelType.encoder_or_decoder)
  "megatron.core.enums.ModelType", "megatron.model.enums.ModelType", "megatron.core.transformer.enums.AttnBackend", "megatron.core.transformer.enums.AttnMaskType",
];

export interface UnpickleOptions {
  /** Where the bytes came from, for messages. */
  file: string;
  /** Extra globals to accept as inert `Opaque` values. */
  allow?: readonly string[];
}

export type PersistentLoad = (pid: unknown) => unknown;

function isNamespace(x: unknown): x is Opaque {
  return x instanceof Opaque && x.global === "argparse.Namespace";
}

/** Unpickle `data`. `persistentLoad` resolves BINPERSID ids (torch: storages). */
export function unpickle(data: Buffer, o: UnpickleOptions, persistentLoad?: PersistentLoad): unknown {
  const inert = new Set([...DEFAULT_INERT, ...(o.allow ?? [])]);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const fail = (why: string, hint?: string): never => {
    throw new StrataError(`${o.file}: pickle byte ${p}: ${why}`, undefined, hint);
  };
  const need = (n: number) => {
    if (p + n > data.length) fail("unexpected end of data (truncated pickle?)");
  };
  const u8 = () => (need(1), data[p++]!);
  const u16 = () => (need(2), (p += 2), data.readUInt16LE(p - 2));
  const u32 = () => (need(4), (p += 4), data.readUInt32LE(p - 4));
  const i32 = () => (need(4), (p += 4), data.readInt32LE(p - 4));
  const u64 = () => (need(8), (p += 8), Number(data.readBigUInt64LE(p - 8)));
  const bytes = (n: number) => (need(n), (p += n), data.subarray(p - n, p));
  const line = () => {
    const e = data.indexOf(0x0a, p);
    if (e < 0) fail("unterminated text line");
    const s = data.subarray(p, e).toString("latin1");
    p = e + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) fail("stack underflow (corrupt pickle)");
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail("MARK expected (corrupt pickle)");
    return stack.splice(m!);
  };
  const top = () => stack[stack.length - 1];
  const longLE = (b: Buffer): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  const global = (mod: string, name: string): Global => {
    const full = `${mod}.${name}`;
    if ((KNOWN_GLOBALS as readonly string[]).includes(full) || inert.has(full)) return new Global(full);
    return fail(`global '${full}' is not allowed: this reader only rebuilds tensors, storages and plain containers, and never runs code from a checkpoint`, `if '${full}' is plain data in the checkpoint (an enum or config class in the saved args), pass --allow-global ${full} to read it as an inert value`);
  };

  const call = (fn: unknown, args: unknown[], how: string): unknown => {
    if (!(fn instanceof Global)) return fail(`${how} on a ${typeof fn}, not a global`);
    switch (fn.name) {
      case "torch._utils._rebuild_tensor_v2":
      case "torch._utils._rebuild_tensor": {
        const [st, off, size, stride] = args as [Storage, number, number[], number[]];
        if (!st || (st as Storage).kind !== "storage") fail(`${fn.name}: first argument is not a storage`);
        return new TorchTensor(st, Number(off), (size ?? []).map(Number), (stride ?? []).map(Number));
      }
      case "torch._utils._rebuild_parameter":
      case "torch._utils._rebuild_parameter_with_state":
        return args[0];
      case "torch._tensor._rebuild_from_type_v2": {
        const [f, , inner] = args as [unknown, unknown, unknown[]];
        return call(f, inner ?? [], how);
      }
      case "collections.OrderedDict": {
        const m = new Map<unknown, unknown>();
        for (const kv of (args[0] as unknown[][] | undefined) ?? []) m.set(kv[0], kv[1]);
        return m;
      }
      case "builtins.set":
      case "builtins.frozenset":
        return [...((args[0] as unknown[]) ?? [])];
      case "argparse.Namespace":
      default:
        if (fn.name in STORAGES) return fail(`storage type ${fn.name} called directly (expected only inside a persistent id)`);
        return new Opaque(fn.name, args);
    }
  };

  for (;;) {
    const at = p;
    const opc = u8();
    switch (opc) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push([]); break; // EMPTY_SET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longLE(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(longLE(bytes(u32()))); break; // LONG4
      case 0x49: { // INT (text)
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : Number(s));
        break;
      }
      case 0x4c: stack.push(Number(line().replace(/L$/, ""))); break; // LONG (text)
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x47: need(8); stack.push(data.readDoubleBE(p)); p += 8; break; // BINFLOAT
      case 0x58: stack.push(bytes(u32()).toString("utf8")); break; // BINUNICODE
      case 0x8c: stack.push(bytes(u8()).toString("utf8")); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(bytes(u64()).toString("utf8")); break; // BINUNICODE8
      case 0x54: stack.push(bytes(u32()).toString("latin1")); break; // BINSTRING
      case 0x55: stack.push(bytes(u8()).toString("latin1")); break; // SHORT_BINSTRING
      case 0x42: stack.push(Buffer.from(bytes(u32()))); break; // BINBYTES
      case 0x43: stack.push(Buffer.from(bytes(u8()))); break; // SHORT_BINBYTES
      case 0x8e: stack.push(Buffer.from(bytes(u64()))); break; // BINBYTES8
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = opc === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { // GLOBAL
        const mod = line();
        stack.push(global(mod, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), mod = pop();
        if (typeof mod !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(mod as string, name as string));
        break;
      }
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break;
      case 0x86: { const b = pop(), a = pop(); stack.push([a, b]); break; }
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push([a, b, c]); break; }
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        const m = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
        stack.push(m);
        break;
      }
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail("APPEND to a non-list"); (l as unknown[]).push(v); break; }
      case 0x65: { const vs = popMark(); const l = top(); if (!Array.isArray(l)) fail("APPENDS to a non-list"); (l as unknown[]).push(...vs); break; }
      case 0x90: { const vs = popMark(); const l = top(); if (!Array.isArray(l)) fail("ADDITEMS to a non-set"); (l as unknown[]).push(...vs); break; }
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        const d = top();
        if (!(d instanceof Map)) fail("SETITEM on a non-dict");
        (d as Map<unknown, unknown>).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof Map)) fail("SETITEMS on a non-dict");
        for (let i = 0; i + 1 < items.length; i += 2) (d as Map<unknown, unknown>).set(items[i], items[i + 1]);
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        stack.push(call(fn, args as unknown[], "REDUCE"));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        stack.push(call(cls, args as unknown[], "NEWOBJ"));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        pop();
        const args = pop(), cls = pop();
        stack.push(call(cls, args as unknown[], "NEWOBJ_EX"));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof Opaque) obj.state = state;
        else if (obj instanceof Map && state instanceof Map) for (const [k, v] of state) obj.set(k, v);
        // tensors' BUILD state (backward hooks, python attributes) carries no data we need
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!persistentLoad) fail("a persistent id, but no storage resolver");
        stack.push(persistentLoad!(pid));
        break;
      }
      default:
        p = at;
        fail(`unsupported pickle opcode 0x${opc.toString(16).padStart(2, "0")}`, "this reader covers the opcodes torch.save writes (pickle protocols 2–4)");
    }
  }
}

/** torch's persistent ids: ('storage', <storage type>, key, location, numel). */
export function torchPersistentLoad(file: string): PersistentLoad {
  return (pid) => {
    if (!Array.isArray(pid) || pid[0] !== "storage") throw new StrataError(`${file}: unknown persistent id ${JSON.stringify(String(Array.isArray(pid) ? pid[0] : pid))}; expected ('storage', type, key, location, numel)`);
    const [, type, key, location, numel] = pid as [string, unknown, unknown, unknown, unknown];
    if (!(type instanceof Global) || !(type.name in STORAGES)) throw new StrataError(`${file}: persistent id names storage type ${type instanceof Global ? type.name : String(type)}, not a torch storage class`);
    return { kind: "storage", key: String(key), dtype: STORAGES[type.name]!, numel: Number(numel), location: String(location) } satisfies Storage;
  };
}

/** A pickled value as plain JS: Namespaces become objects, Maps with string keys stay Maps. */
export function namespaceToObject(x: unknown): Record<string, unknown> | undefined {
  if (!isNamespace(x)) return undefined;
  const st = x.state;
  const out: Record<string, unknown> = {};
  if (st instanceof Map) for (const [k, v] of st) out[String(k)] = v;
  return out;
}
