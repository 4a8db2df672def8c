/**
 * One error type for everything a user can act on: what was wrong, where (file:line of the
 * user's architecture file when known), and what would be valid. The CLI prints `message`
 * without a stack trace unless --verbose.
 */
export interface SourceLoc {
  file: string;
  line: number;
  col: number;
}

export function formatLoc(loc: SourceLoc | undefined): string {
  return loc ? `${loc.file}:${loc.line}:${loc.col}` : "<unknown location>";
}

export class StrataError extends Error {
  constructor(
    message: string,
    readonly loc?: SourceLoc,
    readonly hint?: string,
  ) {
    super(StrataError.compose(message, loc, hint));
    this.name = "StrataError";
  }

  static compose(message: string, loc?: SourceLoc, hint?: string): string {
    const where = loc ? `${formatLoc(loc)}: ` : "";
    return `${where}${message}${hint ? `\n  hint: ${hint}` : ""}`;
  }
}

/** Thrown by op shape rules; mkNode rewraps it with the DSL source location. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}
