// A three-node Raft cluster in one process, driven by hand: the smallest complete use of the core.
// Run: npx tsc -p tsconfig.json && node dist/node/examples/three-nodes-in-memory.js
import { fileURLToPath } from 'node:url';
import { decodeConfChange } from '../src/raft/confchange.js';
import { MemoryStorage } from '../src/raft/storage.js';
import { RawNode, type Ready } from '../src/raft/rawnode.js';
import type { Message } from '../src/raft/message.js';

interface Member {
  node: RawNode;
  storage: MemoryStorage;
  applied: string[];
}

/** Persists, sends and applies one Ready in the order the contract requires, then advances. */
function handleReady(m: Member, rd: Ready, outbox: Message[]): void {
  if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
  if (rd.hardState) m.storage.setHardState(rd.hardState); // a real driver fsyncs here when rd.mustSync
  m.storage.append(rd.entries);
  outbox.push(...rd.messages); // only after the state above is durable
  for (const e of rd.committedEntries) {
    if (e.type === 'normal') m.applied.push(new TextDecoder().decode(e.data));
    if (e.type === 'conf') m.node.applyConfChange(decodeConfChange(e.data));
  }
  m.node.advance(rd);
}

export function runExample(values: string[]): { leader: string; applied: Record<string, string[]>; ticks: number } {
  const ids = ['n1', 'n2', 'n3'];
  const members = new Map<string, Member>();
  for (const [i, id] of ids.entries()) {
    const storage = new MemoryStorage();
    const node = new RawNode({ id, storage, peers: ids, electionTicks: 10, heartbeatTicks: 2, randomSeed: i + 1 });
    members.set(id, { node, storage, applied: [] });
  }
  const pump = (): void => {
    for (let quiet = false; !quiet; ) {
      const outbox: Message[] = [];
      for (const m of members.values()) while (m.node.hasReady()) handleReady(m, m.node.ready(), outbox);
      for (const msg of outbox) members.get(msg.to)?.node.step(msg);
      quiet = outbox.length === 0;
    }
  };
  let ticks = 0;
  const leaderId = (): string | undefined => ids.find((id) => members.get(id)?.node.role === 'leader');
  pump();
  while (!leaderId() && ticks < 1000) {
    for (const m of members.values()) m.node.tick();
    ticks++;
    pump();
  }
  const leader = leaderId();
  if (!leader) throw new Error('no leader elected');
  for (const v of values) {
    members.get(leader)?.node.propose(new TextEncoder().encode(v));
    pump();
  }
  return { leader, applied: Object.fromEntries(ids.map((id) => [id, members.get(id)?.applied ?? []])), ticks };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = runExample(['hello', 'stego', 'cluster']);
  console.log(`leader ${r.leader} elected after ${r.ticks} ticks`);
  for (const [id, applied] of Object.entries(r.applied)) console.log(`${id} applied: ${applied.join(', ')}`);
}
