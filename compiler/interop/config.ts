/**
 * Reading a checkpoint's config (HF config.json, Megatron's saved args) field by field, with
 * errors that name the file, the field, what it holds and what Strata accepts.
 */
import { StrataError } from "../ir/errors.js";

export class ConfigReader {
  constructor(
    readonly file: string,
    readonly raw: Record<string, unknown>,
  ) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  fail(key: string, why: string, hint?: string): never {
    throw new StrataError(`${this.file}: ${key} = ${JSON.stringify(this.raw[key])}: ${why}`, undefined, hint);
  }

  int(key: string, dflt?: number): number {
    const v = this.raw[key] ?? dflt;
    if (v === undefined || v === null) throw new StrataError(`${this.file}: missing field '${key}' (a positive integer)`);
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) this.fail(key, "must be a positive integer");
    return v;
  }

  num(key: string, dflt?: number): number {
    const v = this.raw[key] ?? dflt;
    if (v === undefined || v === null) throw new StrataError(`${this.file}: missing field '${key}' (a number)`);
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "must be a finite number");
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.raw[key] ?? dflt;
    if (typeof v !== "boolean") this.fail(key, "must be true or false");
    return v;
  }

  str(key: string, dflt?: string): string {
    const v = this.raw[key] ?? dflt;
    if (v === undefined || v === null) throw new StrataError(`${this.file}: missing field '${key}' (a string)`);
    if (typeof v !== "string") this.fail(key, "must be a string");
    return v;
  }

  /** A field that Strata only supports at one value (e.g. biases off). */
  require<T>(key: string, dflt: T, ok: (v: T) => boolean, why: string, hint?: string): void {
    const v = (this.raw[key] ?? dflt) as T;
    if (!ok(v)) this.fail(key, why, hint);
  }
}
