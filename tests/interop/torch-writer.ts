/**
 * Writing torch checkpoints from TypeScript for the tests: a pickle protocol-2 emitter (the
 * opcodes torch.save uses) and a zip writer (stored or deflated entries), so the restricted
 * unpickler and import-megatron are tested on files made here, with no Python.
 */
import { writeFileSync } from "node:fs";
import { deflateRawSync } from "node:zlib";

export class Pickler {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  private memo = 0;

  private op(...b: number[]) {
    this.parts.push(Buffer.from(b));
    return this;
  }
  raw(b: Buffer) {
    this.parts.push(b);
    return this;
  }
  mark() { return this.op(0x28); }
  none() { return this.op(0x4e); }
  bool(v: boolean) { return this.op(v ? 0x88 : 0x89); }
  int(v: number) {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      return this.raw(b);
    }
    // LONG1, little-endian two's complement
    let x = BigInt(v);
    const bytes: number[] = [];
    while (x !== 0n && x !== -1n) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this.op(0x8a, bytes.length + 1, ...bytes, v < 0 ? 0xff : 0);
  }
  float(v: number) {
    const b = Buffer.alloc(9);
    b[0] = 0x47;
    b.writeDoubleBE(v, 1);
    return this.raw(b);
  }
  str(s: string) {
    const u = Buffer.from(s, "utf8");
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(u.length, 1);
    return this.raw(Buffer.concat([h, u]));
  }
  bytes(b: Buffer) {
    const h = Buffer.alloc(5);
    h[0] = 0x42;
    h.writeUInt32LE(b.length, 1);
    return this.raw(Buffer.concat([h, b]));
  }
  global(mod: string, name: string) { return this.raw(Buffer.from(`c${mod}\n${name}\n`, "latin1")); }
  put() { return this.op(0x71, this.memo++ & 0xff); }
  get(i: number) { return this.op(0x68, i); }
  get memoCount() { return this.memo; }
  tuple() { return this.op(0x74); }
  emptyTuple() { return this.op(0x29); }
  emptyDict() { return this.op(0x7d); }
  emptyList() { return this.op(0x5d); }
  setitems() { return this.op(0x75); }
  appends() { return this.op(0x65); }
  reduce() { return this.op(0x52); }
  newobj() { return this.op(0x81); }
  build() { return this.op(0x62); }
  persid() { return this.op(0x51); }
  stop() { return this.op(0x2e); }
  done(): Buffer { return Buffer.concat(this.parts); }

  /** A plain value: null, boolean, number (int or float), string, array (as tuple with `tuple`), object (dict). */
  value(v: unknown, asTuple = false): this {
    if (v === null || v === undefined) return this.none();
    if (typeof v === "boolean") return this.bool(v);
    if (typeof v === "number") return Number.isInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === "string") return this.str(v);
    if (Array.isArray(v)) {
      if (asTuple) {
        this.mark();
        for (const x of v) this.value(x);
        return this.tuple();
      }
      this.emptyList().mark();
      for (const x of v) this.value(x);
      return this.appends();
    }
    if (typeof v === "object") {
      this.emptyDict().mark();
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) this.str(k).value(x);
      return this.setitems();
    }
    throw new Error(`cannot pickle ${String(v)}`);
  }

  /** torch._utils._rebuild_tensor_v2(('storage', torch.<T>Storage, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()). */
  tensor(storageClass: string, key: string, numel: number, shape: number[], offset = 0) {
    const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.global("torch._utils", "_rebuild_tensor_v2");
    this.mark();
    this.mark().str("storage").global("torch", storageClass).str(key).str("cpu").int(numel).tuple().persid();
    this.int(offset).value(shape, true).value(stride, true).bool(false);
    this.global("collections", "OrderedDict").emptyTuple().reduce();
    this.tuple().reduce();
    return this;
  }
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/**
 * A zip like torch.save's: entries in order; `deflate` names entries to compress; `zip64` writes
 * the central directory's sizes and offsets as 0xffffffff with a zip64 extra field, and a zip64
 * end record (what a checkpoint over 4 GB has).
 */
export function writeZip(file: string, entries: { name: string; data: Buffer; deflate?: boolean }[], o: { zip64?: boolean } = {}): void {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.deflate ? 8 : 0, 8);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(body.length, 18);
    h.writeUInt32LE(e.data.length, 22);
    h.writeUInt16LE(name.length, 26);
    out.push(h, name, body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(45, 6);
    c.writeUInt16LE(e.deflate ? 8 : 0, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(o.zip64 ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(o.zip64 ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(o.zip64 ? 0xffffffff : off, 42);
    if (o.zip64) {
      const x = Buffer.alloc(28);
      x.writeUInt16LE(0x0001, 0);
      x.writeUInt16LE(24, 2);
      x.writeBigUInt64LE(BigInt(e.data.length), 4); // uncompressed, compressed, offset: the order of the spec
      x.writeBigUInt64LE(BigInt(body.length), 12);
      x.writeBigUInt64LE(BigInt(off), 20);
      c.writeUInt16LE(x.length, 30);
      central.push(c, name, x);
    } else central.push(c, name);
    off += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(o.zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(o.zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(o.zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(o.zip64 ? 0xffffffff : off, 16);
  const tail: Buffer[] = [];
  if (o.zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(off), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(off + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  writeFileSync(file, Buffer.concat([...out, cd, ...tail, eocd]));
}

/** bf16 bytes of float32 values that are already bf16-exact. */
export function bf16Bytes(v: Float32Array): Buffer {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const b = Buffer.alloc(v.length * 2);
  for (let i = 0; i < v.length; i++) b.writeUInt16LE(u[i]! >>> 16, 2 * i);
  return b;
}
