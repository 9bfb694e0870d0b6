// Metrics that are defined in node/src/metrics but not yet observed by the code that owns the event, with
// the call site that will feed them. Until then their queries return no series (or only zeros) and the
// live test checks that those queries parse, and says which ones it could not check for data.
export const AWAITING_WIRING: Record<string, string> = {
};

/** Operator metrics: exported by the operator process (issue 10), which the local cluster does not run. */
export function isOperatorMetric(name: string): boolean {
  return name.startsWith('stego_operator_');
}
