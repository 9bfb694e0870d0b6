/** Odd seeds simulate 3 voters, even seeds 5, so any range of seeds covers both sizes. */
export function votersFor(seed: number): number {
  return seed % 2 === 0 ? 5 : 3;
}
