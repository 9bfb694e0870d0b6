// Giving the event loop back. The storage and cluster code that runs on the consensus thread does long work
// (CRCs of large entries, snapshot manifests and bytes) a slice at a time, so ticks, heartbeats and saves
// never wait behind it. One way to do it, used by both.

/** Resolves on the next event-loop turn, after pending I/O callbacks and timers have run. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How long a slice of such work may hold the event loop before it lets consensus run. */
const SLICE_MS = 2;

/** Cooperative time slicing: maybeYield() gives the event loop a turn once SLICE_MS has passed. */
export class TimeSlice {
  private since = performance.now();

  /** Yields if this slice has run SLICE_MS; says whether it did (state may have changed meanwhile). */
  async maybeYield(): Promise<boolean> {
    if (performance.now() - this.since < SLICE_MS) return false;
    await nextTurn();
    this.since = performance.now();
    return true;
  }
}
