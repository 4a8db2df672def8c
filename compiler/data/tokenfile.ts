/**
 * The token file (`.tok`): what `strata data` writes and training reads. Little-endian, a 64-byte
 * header, then the ids, then (optionally) a loss mask:
 *
 *   offset size field
 *        0    8 magic      "STRATATK"
 *        8    4 version    1
 *       12    4 idBytes    2 (uint16 ids) or 4 (uint32 ids)
 *       16    8 count      number of ids (uint64)
 *       24    4 vocab      vocabulary size; every id < vocab
 *       28    4 rowLength  0: one token stream (documents separated by `eos`);
 *                          n > 0: fixed-length examples of n tokens (count is a multiple of n)
 *       32    4 eos        end-of-document id, 0xFFFFFFFF when there is none
 *       36    4 flags      bit 0: a loss mask follows the ids
 *       40   24 reserved   zero
 *       64      ids        count × idBytes
 *               mask       count bytes, 0 or 1, when flags bit 0 is set: mask[i] = 1 when token i
 *                          is a supervised target (the loss of predicting it from tokens < i counts)
 *
 * The file is exactly 64 + count·idBytes (+ count) bytes. `readTokenFile` checks every field and
 * says which one is wrong and what would be valid.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { StrataError } from "../ir/errors.js";

export const TOKEN_MAGIC = "STRATATK";
export const TOKEN_VERSION = 1;
export const HEADER_BYTES = 64;
export const NO_EOS = 0xffffffff;

export interface TokenData {
  /** Token ids. */
  ids: Uint32Array | Uint16Array;
  vocab: number;
  /** 0 for a stream, else the length of every example. */
  rowLength: number;
  /** End-of-document id, or undefined. */
  eos?: number;
  /** Loss mask (1 = supervised target), same length as ids. */
  mask?: Uint8Array;
}

export interface TokenHeader {
  version: number;
  idBytes: 2 | 4;
  count: number;
  vocab: number;
  rowLength: number;
  eos?: number;
  hasMask: boolean;
}

/** The id width a vocabulary needs: uint16 up to 65536 ids, else uint32. */
export function idBytesFor(vocab: number): 2 | 4 {
  return vocab <= 0x10000 ? 2 : 4;
}

function check(ok: boolean, file: string, what: string, hint?: string): asserts ok {
  if (!ok) throw new StrataError(`${file}: ${what}`, undefined, hint);
}

/** Validate ids / mask / shape fields; `where` names the data in messages. */
export function validateTokenData(d: TokenData, where = "token data"): void {
  check(Number.isInteger(d.vocab) && d.vocab >= 1 && d.vocab <= NO_EOS, where, `vocab ${d.vocab} must be an integer in [1, ${NO_EOS}]`);
  check(Number.isInteger(d.rowLength) && d.rowLength >= 0, where, `rowLength ${d.rowLength} must be a non-negative integer (0 = a token stream)`);
  if (d.rowLength > 0)
    check(d.ids.length % d.rowLength === 0, where, `${d.ids.length} ids are not a whole number of rows of ${d.rowLength}`);
  if (d.eos !== undefined) check(Number.isInteger(d.eos) && d.eos >= 0 && d.eos < d.vocab, where, `eos id ${d.eos} is outside the vocabulary [0, ${d.vocab})`);
  for (let i = 0; i < d.ids.length; i++)
    if (d.ids[i]! >= d.vocab) throw new StrataError(`${where}: id ${d.ids[i]} at position ${i} is outside the vocabulary [0, ${d.vocab})`);
  if (d.mask) {
    check(d.mask.length === d.ids.length, where, `the mask has ${d.mask.length} entries for ${d.ids.length} ids`);
    for (let i = 0; i < d.mask.length; i++) if (d.mask[i]! > 1) throw new StrataError(`${where}: mask value ${d.mask[i]} at position ${i} must be 0 or 1`);
  }
}

export function encodeTokenFile(d: TokenData): Buffer {
  validateTokenData(d);
  const idBytes = idBytesFor(d.vocab);
  const n = d.ids.length;
  const buf = Buffer.alloc(HEADER_BYTES + n * idBytes + (d.mask ? n : 0));
  buf.write(TOKEN_MAGIC, 0, "latin1");
  buf.writeUInt32LE(TOKEN_VERSION, 8);
  buf.writeUInt32LE(idBytes, 12);
  buf.writeBigUInt64LE(BigInt(n), 16);
  buf.writeUInt32LE(d.vocab, 24);
  buf.writeUInt32LE(d.rowLength, 28);
  buf.writeUInt32LE(d.eos ?? NO_EOS, 32);
  buf.writeUInt32LE(d.mask ? 1 : 0, 36);
  let at = HEADER_BYTES;
  if (idBytes === 2) for (let i = 0; i < n; i++, at += 2) buf.writeUInt16LE(d.ids[i]!, at);
  else for (let i = 0; i < n; i++, at += 4) buf.writeUInt32LE(d.ids[i]!, at);
  if (d.mask) buf.set(d.mask, at);
  return buf;
}

/** Parse and check a header (the first 64 bytes) against the file size. */
export function parseTokenHeader(buf: Buffer, file = "<buffer>"): TokenHeader {
  check(buf.length >= HEADER_BYTES, file, `is ${buf.length} bytes, shorter than the ${HEADER_BYTES}-byte token-file header`, "write token files with `strata data`");
  const magic = buf.toString("latin1", 0, 8);
  check(magic === TOKEN_MAGIC, file, `is not a Strata token file (magic ${JSON.stringify(magic)}, expected "${TOKEN_MAGIC}")`, "write token files with `strata data tokenize|corpus|probe`");
  const version = buf.readUInt32LE(8);
  check(version === TOKEN_VERSION, file, `token-file version ${version} is not supported (this Strata reads version ${TOKEN_VERSION})`);
  const idBytes = buf.readUInt32LE(12);
  check(idBytes === 2 || idBytes === 4, file, `id width ${idBytes} bytes is invalid`, "valid: 2 (uint16) or 4 (uint32)");
  const count64 = buf.readBigUInt64LE(16);
  check(count64 <= BigInt(Number.MAX_SAFE_INTEGER), file, `id count ${count64} is too large`);
  const count = Number(count64);
  const vocab = buf.readUInt32LE(24);
  check(vocab >= 1, file, "vocab size 0 is invalid (must be ≥ 1)");
  check(idBytes === 4 || vocab <= 0x10000, file, `vocab ${vocab} does not fit uint16 ids`, "uint16 files hold vocabularies up to 65536");
  const rowLength = buf.readUInt32LE(28);
  check(rowLength === 0 || count % rowLength === 0, file, `${count} ids are not a whole number of rows of ${rowLength}`);
  const eosRaw = buf.readUInt32LE(32);
  check(eosRaw === NO_EOS || eosRaw < vocab, file, `eos id ${eosRaw} is outside the vocabulary [0, ${vocab})`);
  const flags = buf.readUInt32LE(36);
  check((flags & ~1) === 0, file, `unknown flags 0x${flags.toString(16)} (version 1 defines only bit 0, the loss mask)`);
  for (let i = 40; i < HEADER_BYTES; i++) check(buf[i] === 0, file, `reserved header byte ${i} is ${buf[i]}, must be 0`);
  const hasMask = (flags & 1) === 1;
  const want = HEADER_BYTES + count * idBytes + (hasMask ? count : 0);
  check(buf.length === want, file, `is ${buf.length} bytes but its header (count ${count}, ${idBytes}-byte ids${hasMask ? ", mask" : ""}) says ${want}`, buf.length < want ? "the file is truncated" : "the file has trailing bytes");
  return { version, idBytes, count, vocab, rowLength, eos: eosRaw === NO_EOS ? undefined : eosRaw, hasMask };
}

export function decodeTokenFile(buf: Buffer, file = "<buffer>"): TokenData {
  const h = parseTokenHeader(buf, file);
  const body = buf.subarray(HEADER_BYTES, HEADER_BYTES + h.count * h.idBytes);
  const ids = h.idBytes === 2 ? new Uint16Array(h.count) : new Uint32Array(h.count);
  for (let i = 0; i < h.count; i++) ids[i] = h.idBytes === 2 ? body.readUInt16LE(2 * i) : body.readUInt32LE(4 * i);
  const d: TokenData = { ids, vocab: h.vocab, rowLength: h.rowLength, ...(h.eos !== undefined ? { eos: h.eos } : {}) };
  if (h.hasMask) d.mask = Uint8Array.from(buf.subarray(HEADER_BYTES + h.count * h.idBytes));
  validateTokenData(d, file);
  return d;
}

/** Write atomically (temp file + rename), so a reader never sees half a file. */
export function writeTokenFile(path: string, d: TokenData): void {
  const buf = encodeTokenFile(d);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, buf);
  renameSync(tmp, path);
}

export function readTokenFile(path: string): TokenData {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new StrataError(`cannot read token file ${path}: ${(e as Error).message}`);
  }
  return decodeTokenFile(buf, path);
}
