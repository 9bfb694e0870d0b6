// xorshift32 (Marsaglia): a seeded generator of uint32s, fast and good enough for texture, test inputs
// and the ±1 directions of LSB matching. Never for keys or anything an attacker must not predict.

/** Returns the generator's next uint32 on each call; seed 0 (a fixed point of xorshift) is replaced. */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
