// Merges the messages of one Ready that say the same thing twice to the same peer. Under load a leader
// queues one append per proposal and peer between two Readies, and a follower answers each append it
// stepped: bench:raft at 256 clients measured ~20 appends per peer per Ready, each one a frame, a write,
// a step and an acknowledgement on both sides. Merged, a peer gets one append per Ready carrying all of
// them and the leader one acknowledgement: the same entries, fewer messages.
//
// Only neighbours in a peer's own sequence merge, so no message to a peer overtakes another to the same
// peer:
// - app + app: the second continues the first (same term, its index is the first's last entry and its
//   logTerm that entry's term). The merged append carries both entry lists and the later commit index,
//   which is what the second append alone would have told the follower. An append without entries that
//   continues the previous one only updates the commit index.
// - accepted appResp + accepted appResp (same term): the later one, carrying the higher index; the
//   leader's progress moves to it either way (an acknowledgement covers every index below it).
import type { Message } from './message.js';
import { entrySize } from './storage.js';

/**
 * `msgs` with mergeable neighbours merged (a new array; messages that were merged are new objects). A
 * merged append stays within `maxEntryBytes` (maxSizePerMsg, entries counted as the core counts them).
 */
export function coalesceMessages(msgs: Message[], maxEntryBytes: number): Message[] {
  if (msgs.length < 2) return msgs;
  const out: Message[] = [];
  /** Position in `out` of the last message to each peer. */
  const lastTo = new Map<string, number>();
  /** Entry bytes of merged appends in `out`, by position (for the size cap). */
  const bytesAt = new Map<number, number>();
  for (const m of msgs) {
    const at = lastTo.get(m.to);
    const prev = at === undefined ? undefined : out[at]!;
    if (prev && at !== undefined) {
      if (continuesAppend(prev, m)) {
        const prevBytes = bytesAt.get(at) ?? entryBytes(prev);
        const bytes = prevBytes + entryBytes(m);
        if (bytes <= maxEntryBytes || !m.entries?.length) {
          // The first merge at a position copies the message and its entry list once; later merges append to
          // that copy in place, so a run of k appends costs O(entries), not O(k × entries).
          const merged = bytesAt.has(at) ? prev : { ...prev, entries: [...prev.entries!] };
          for (const e of m.entries ?? []) merged.entries!.push(e);
          merged.commit = Math.max(prev.commit, m.commit);
          out[at] = merged;
          bytesAt.set(at, bytes);
          continue;
        }
      } else if (supersedesAck(prev, m)) {
        out[at] = m;
        continue;
      }
    }
    lastTo.set(m.to, out.length);
    out.push(m);
  }
  return out;
}

function continuesAppend(prev: Message, m: Message): boolean {
  if (prev.type !== 'app' || m.type !== 'app' || prev.term !== m.term || !prev.entries?.length) return false;
  const last = prev.entries[prev.entries.length - 1]!;
  return m.index === last.index && m.logTerm === last.term;
}

function supersedesAck(prev: Message, m: Message): boolean {
  return prev.type === 'appResp' && m.type === 'appResp' && !prev.reject && !m.reject && prev.term === m.term && m.index >= prev.index;
}

function entryBytes(m: Message): number {
  let n = 0;
  for (const e of m.entries ?? []) n += entrySize(e);
  return n;
}
