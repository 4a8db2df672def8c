/**
 * A small zip reader for torch checkpoints (`torch.save` writes a zip of `<name>/data.pkl`,
 * `<name>/data/<storage key>`, …, entries stored uncompressed and 64-byte aligned, zip64 when
 * large). Reads the central directory, then entries on demand: stored entries by offset (so a
 * 16 GB checkpoint is never held in memory), deflated ones through node:zlib.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { StrataError } from "../ir/errors.js";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

export class ZipFile {
  readonly entries = new Map<string, ZipEntry>();
  private readonly fd: number;
  private readonly size: number;

  constructor(readonly path: string) {
    this.size = statSync(path).size;
    this.fd = openSync(path, "r");
    try {
      this.readDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private bytes(pos: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, b, got, len - got, pos + got);
      if (r <= 0) throw new StrataError(`${this.path}: unexpected end of file at byte ${pos + got} (truncated zip?)`);
      got += r;
    }
    return b;
  }

  private readDirectory(): void {
    const tailLen = Math.min(this.size, 65557);
    const tail = this.bytes(this.size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new StrataError(`${this.path}: not a zip file (no end-of-central-directory record)`, undefined, "torch ≥ 1.6 saves checkpoints as zip files; an older (legacy tar/pickle) checkpoint must be re-saved with torch.save(obj, path) from a newer torch");
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdAbs = this.size - tailLen + eocd;
    if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) {
      // zip64: the locator sits right before the EOCD
      const loc = this.bytes(eocdAbs - 20, 20);
      if (loc.readUInt32LE(0) !== 0x07064b50) throw new StrataError(`${this.path}: zip64 end-of-central-directory locator missing`);
      const rec = this.bytes(Number(loc.readBigUInt64LE(8)), 56);
      if (rec.readUInt32LE(0) !== 0x06064b50) throw new StrataError(`${this.path}: zip64 end-of-central-directory record missing`);
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    const cd = this.bytes(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new StrataError(`${this.path}: corrupt zip central directory (entry ${i})`);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let headerOffset = cd.readUInt32LE(p + 42);
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString("utf8");
      // zip64 extra field: the 0xffffffff fields, in order size, compressed size, offset
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) { size = Number(cd.readBigUInt64LE(q)); q += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = Number(cd.readBigUInt64LE(q)); q += 8; }
          if (headerOffset === 0xffffffff) headerOffset = Number(cd.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, headerOffset });
      p = eEnd + commentLen;
    }
  }

  private dataStart(e: ZipEntry): number {
    const h = this.bytes(e.headerOffset, 30);
    if (h.readUInt32LE(0) !== 0x04034b50) throw new StrataError(`${this.path}: corrupt local header for '${e.name}'`);
    return e.headerOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  }

  /** The whole entry (inflated if deflated). */
  read(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new StrataError(`${this.path}: no entry '${name}' in the archive`);
    const raw = this.bytes(this.dataStart(e), e.compressedSize);
    if (e.method === 0) return raw;
    if (e.method === 8) return inflateRawSync(raw);
    throw new StrataError(`${this.path}: entry '${name}' uses zip compression method ${e.method}; only stored (0) and deflate (8) are supported`);
  }

  /** A reader of byte ranges of a stored entry (deflated entries are inflated once, in memory). */
  ranged(name: string): { size: number; read(start: number, len: number): Buffer } {
    const e = this.entries.get(name);
    if (!e) throw new StrataError(`${this.path}: no entry '${name}' in the archive`);
    if (e.method !== 0) {
      const all = this.read(name);
      return { size: all.length, read: (s, l) => all.subarray(s, s + l) };
    }
    const base = this.dataStart(e);
    return {
      size: e.size,
      read: (s, l) => {
        if (s < 0 || s + l > e.size) throw new StrataError(`${this.path}: read [${s}, ${s + l}) outside entry '${name}' (${e.size} bytes)`);
        return this.bytes(base + s, l);
      },
    };
  }
}
