import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StrataError } from "../../compiler/ir/errors.js";
import { readNpy, writeNpy } from "../../compiler/io/npy.js";

const dir = mkdtempSync(join(tmpdir(), "strata-npy-"));
let k = 0;
const tmp = () => join(dir, `a${k++}.npy`);

/** A v1.0 .npy with the given header dict text and data bytes. */
function rawNpy(dict: string, data: Buffer, magic = "\x93NUMPY", version = [1, 0]): string {
  let h = dict;
  h += " ".repeat((64 - ((10 + h.length + 1) % 64)) % 64) + "\n";
  const b = Buffer.concat([Buffer.from(magic, "latin1"), Buffer.from(version), Buffer.alloc(2), Buffer.from(h, "latin1"), data]);
  b.writeUInt16LE(h.length, 8);
  const p = tmp();
  writeFileSync(p, b);
  return p;
}

function errOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StrataError);
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("npy", () => {
  it("round trips int32 and float32 of several ranks on fresh random data", () => {
    for (const shape of [[], [7], [3, 5], [2, 3, 4], [0, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const f = Float32Array.from({ length: n }, () => (Math.random() - 0.5) * 1e3);
      const i = Int32Array.from({ length: n }, () => Math.floor((Math.random() - 0.5) * 2 ** 32));
      const pf = tmp(), pi = tmp();
      writeNpy(pf, "<f4", shape, f);
      writeNpy(pi, "<i4", shape, i);
      const rf = readNpy(pf), ri = readNpy(pi);
      expect(rf).toEqual({ dtype: "<f4", shape, data: f });
      expect(ri).toEqual({ dtype: "<i4", shape, data: i });
      expect(rf.data).toBeInstanceOf(Float32Array);
      expect(ri.data).toBeInstanceOf(Int32Array);
      // v1.0 layout: magic, version 1.0, data 64-byte aligned, header ends with '\n'
      const b = readFileSync(pf);
      expect(b.toString("latin1", 0, 8)).toBe("\x93NUMPY\x01\x00");
      const hl = b.readUInt16LE(8);
      expect((10 + hl) % 64).toBe(0);
      expect(b[10 + hl - 1]).toBe(0x0a);
      const header = b.toString("latin1", 10, 10 + hl);
      const want = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
      expect(header).toContain(`'shape': ${want}`);
    }
  });

  it("float64 input is rounded to float32", () => {
    const p = tmp();
    writeNpy(p, "<f4", [2], [0.1, 1 / 3]);
    expect([...readNpy(p).data]).toEqual([Math.fround(0.1), Math.fround(1 / 3)]);
  });

  it("reads headers written by numpy (shape spacing, key order, v2.0)", () => {
    const d = Buffer.alloc(8);
    d.writeInt32LE(-5, 0);
    d.writeInt32LE(9, 4);
    expect(readNpy(rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }", d))).toEqual({ dtype: "<i4", shape: [1, 2], data: Int32Array.from([-5, 9]) });
    expect(readNpy(rawNpy("{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}", d)).shape).toEqual([2]);
    // v2.0: u32 header length
    const h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n";
    const b = Buffer.concat([Buffer.from("\x93NUMPY", "latin1"), Buffer.from([2, 0]), Buffer.alloc(4), Buffer.from(h, "latin1"), d]);
    b.writeUInt32LE(h.length, 8);
    const p = tmp();
    writeFileSync(p, b);
    expect([...readNpy(p).data]).toEqual([-5, 9]);
  });

  it("clear errors", () => {
    const d8 = Buffer.alloc(8);
    let p = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", d8);
    expect(errOf(() => readNpy(p)).message).toMatch(new RegExp(`${p}: unsupported .npy dtype '<f8'`));
    p = rawNpy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", d8);
    expect(errOf(() => readNpy(p)).message).toMatch(/unsupported .npy dtype '>i4'/);
    p = rawNpy("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }", d8);
    expect(errOf(() => readNpy(p)).message).toMatch(/Fortran-order .npy arrays are not supported/);
    p = rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", d8, "\x93NUMPZ");
    expect(errOf(() => readNpy(p)).message).toMatch(/not a .npy file \(bad magic/);
    p = rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", d8, "\x93NUMPY", [9, 0]);
    expect(errOf(() => readNpy(p)).message).toMatch(/unsupported .npy format version 9.0/);
    p = rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", d8);
    expect(errOf(() => readNpy(p)).message).toMatch(/truncated .npy data: shape \[3\] of <i4 needs 12 bytes, file has 8/);
    p = rawNpy("{'descr': '<i4', 'shape': (2,), }", d8);
    expect(errOf(() => readNpy(p)).message).toMatch(/malformed .npy header/);
    p = tmp();
    writeFileSync(p, Buffer.from("\x93NUMPY\x01\x00\xff\x00{'descr'", "latin1"));
    expect(errOf(() => readNpy(p)).message).toMatch(/truncated .npy header/);
    expect(errOf(() => readNpy(join(dir, "nope.npy"))).message).toMatch(/cannot open .npy file/);
    expect(errOf(() => writeNpy(tmp(), "<f8" as never, [1], [1])).message).toMatch(/unsupported .npy dtype "<f8"/);
    expect(errOf(() => writeNpy(tmp(), "<i4", [2], [1, 2.5])).message).toMatch(/element 1 = 2.5 is not an int32/);
    expect(errOf(() => writeNpy(tmp(), "<i4", [3], [1, 2])).message).toMatch(/2 values for shape \[3\]/);
  });
});
