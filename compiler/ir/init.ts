/**
 * The initialisation specs a param node carries (attrs.init): plain data, drawn deterministically
 * from a seed by the interpreter and the C++ runtime (runtime/INIT.md). Built by the DSL's `init`.
 */
export type InitSpec =
  | { kind: "normal"; std: number }
  | { kind: "uniform"; low: number; high: number }
  | { kind: "const"; value: number }
  /** A_log = log U(low, high) (Mamba: A = −exp(A_log) in [−16, −1]). */
  | { kind: "alog_uniform"; low: number; high: number }
  /**
   * Mamba-1's deterministic S4D-real A_log: flat element i = log((i mod n) + 1), so a [d_inner, n]
   * tensor holds log(1..n) in every row (A = −exp(A_log) = −[1..n]). No random numbers.
   */
  | { kind: "alog_arange"; n: number }
  /** dt = exp(U(log dtMin, log dtMax)) clamped ≥ floor; value = softplus⁻¹(dt). */
  | { kind: "dt_bias"; dtMin: number; dtMax: number; floor: number }
  /** U(±1/sqrt(fanIn)): PyTorch's default kaiming_uniform(a=√5) bound for conv weights. */
  | { kind: "kaiming_uniform"; fanIn: number };

