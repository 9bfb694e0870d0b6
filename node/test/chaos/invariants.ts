// Checks that need the whole cluster after the faults are healed, and its data dirs after it stopped:
//  - convergence: every member applies the same index, and its object listing (id, sha256, size) has the
//    same digest; every object's bytes hash to its listed sha256 on every member;
//  - no acknowledged put lost: every write-once put, and every register put that no delete of its object
//    (acknowledged or unanswered) may have removed, is present with the acknowledged sha256;
//  - no duplicates: every put sends distinct bytes, so two stored objects with one sha256 are one request
//    stored twice (a retry that created a second object), and an object whose sha256 no put sent is a stray;
//  - terms never go backward on disk, and no member votes for two candidates in one term: the hard-state
//    records of each WAL, in write order (segments by sequence, records by offset).

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseRecord, RecordType } from '../../src/storage/record.js';
import type { ChaosCluster, Member } from './cluster.js';
import type { Workload } from './client.js';

export interface Finding {
  check: string;
  detail: string;
}

interface Listed {
  id: string;
  sha256: string;
  size: number;
}

export async function waitConverged(c: ChaosCluster, deadlineMs: number): Promise<{ applied: number; leader: string }> {
  const deadline = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    try {
      const { leader } = await c.waitForLeader(Math.max(1_000, deadline - Date.now()));
      const st = await Promise.all(c.running().map((m) => c.status(m)));
      const applied = new Set(st.map((s) => s.applied_index));
      const commit = Math.max(...st.map((s) => s.commit_index));
      if (applied.size === 1 && [...applied][0]! >= commit) return { applied: [...applied][0]!, leader };
      last = st.map((s) => `${s.node_id}: applied ${s.applied_index} commit ${s.commit_index}`).join(', ');
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`cluster did not converge within ${deadlineMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function listing(c: ChaosCluster, m: Member): Promise<Listed[]> {
  const r = await c.json<{ objects: Listed[] }>(m, '/api/objects?stale=true', { timeoutMs: 10_000, headers: c.headers() });
  if (r.status !== 200) throw new Error(`${m.id} GET /api/objects?stale=true → ${r.status}`);
  return r.body.objects.map((o) => ({ id: o.id, sha256: o.sha256, size: o.size })).sort((a, b) => a.id.localeCompare(b.id));
}

export function listingDigest(list: Listed[]): string {
  const h = createHash('sha256');
  for (const o of list) h.update(`${o.id} ${o.sha256} ${o.size}\n`);
  return h.digest('hex');
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

export interface StateReport {
  applied: number;
  objects: number;
  digests: Record<string, string>;
  bytesChecked: number;
  ackedOnce: number;
  /** Acknowledged puts checked present at the end (write-once and register puts no delete touched). */
  ackedPuts: number;
  lost: number;
}

export async function checkState(c: ChaosCluster, w: Workload, findings: Finding[]): Promise<StateReport> {
  const { applied } = await waitConverged(c, 120_000);
  const members = c.running();
  const lists = new Map<string, Listed[]>();
  for (const m of members) lists.set(m.id, await listing(c, m));
  const digests: Record<string, string> = {};
  for (const [id, l] of lists) digests[id] = listingDigest(l);
  if (new Set(Object.values(digests)).size !== 1) {
    findings.push({ check: 'divergence', detail: `listing digests differ at applied index ${applied}: ${JSON.stringify(digests)}` });
  }
  const reference = lists.get(members[0]!.id)!;
  // bytes: every object on every member hashes to its listed sha256
  let bytesChecked = 0;
  const jobs = members.flatMap((m) => reference.map((o) => ({ m, o })));
  await mapLimit(jobs, 16, async ({ m, o }) => {
    const res = await fetch(`${m.url}/api/objects/${o.id}?stale=true`, { headers: c.headers(), signal: AbortSignal.timeout(10_000) });
    const bytes = Buffer.from(await res.arrayBuffer());
    bytesChecked++;
    if (res.status !== 200) findings.push({ check: 'divergence', detail: `${m.id} GET ${o.id} → ${res.status}` });
    else if (createHash('sha256').update(bytes).digest('hex') !== o.sha256 || bytes.length !== o.size) {
      findings.push({ check: 'divergence', detail: `${m.id} serves bytes for ${o.id} that do not match the listing` });
    }
  });
  // acknowledged puts
  const byId = new Map(reference.map((o) => [o.id, o]));
  let lost = 0;
  const mayBeDeleted = new Set<string>();
  for (const op of w.history) {
    if (op.kind === 'delete' && op.object && !(op.outcome === 'ok' && op.result === false) && op.outcome !== 'fail') mayBeDeleted.add(op.object);
  }
  let ackedPuts = 0;
  for (const op of w.history) {
    if (op.kind !== 'put' || op.outcome !== 'ok' || !op.object || mayBeDeleted.has(op.object)) continue;
    ackedPuts++;
    const o = byId.get(op.object);
    if (!o || o.sha256 !== op.result) {
      lost++;
      findings.push({ check: 'lost-write', detail: `acknowledged put #${op.id} of ${op.key} (object ${op.object}, ${String(op.result).slice(0, 12)}) is ${o ? `replaced by ${o.sha256.slice(0, 12)}` : 'missing'}` });
    }
  }
  // duplicates and strays: each put sent bytes of its own (random pixels), retries the same bytes again
  const sent = new Set<string>();
  for (const op of w.history) if (op.kind === 'put' && op.value) sent.add(op.value);
  const bySha = new Map<string, string[]>();
  for (const o of reference) bySha.set(o.sha256, [...(bySha.get(o.sha256) ?? []), o.id]);
  for (const [sha, ids] of bySha) {
    if (ids.length > 1) findings.push({ check: 'duplicate', detail: `${ids.length} objects hold the bytes of one put (${sha.slice(0, 12)}): ${ids.join(', ')}` });
    if (!sent.has(sha)) findings.push({ check: 'duplicate', detail: `objects ${ids.join(', ')} hold bytes (${sha.slice(0, 12)}) no put sent` });
  }
  for (const bad of w.badAnswers) findings.push({ check: 'bad-answer', detail: bad });
  for (const bad of w.corruptReads) findings.push({ check: 'corrupt-read', detail: bad });
  return { applied, objects: reference.length, digests, bytesChecked, ackedOnce: w.ackedOnce.size, ackedPuts, lost };
}

function walFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.wal')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export interface DiskReport {
  members: number;
  hardStates: number;
  maxTerm: Record<string, number>;
}

/** Reads every member's WAL after the processes stopped (the run's retired members too). */
export function checkDisk(members: Member[], findings: Finding[]): DiskReport {
  let hardStates = 0;
  const maxTerm: Record<string, number> = {};
  for (const m of members) {
    let term = 0;
    let vote: string | null = null;
    for (const file of walFiles(m.dataDir)) {
      const buf = readFileSync(file);
      let off = 0;
      for (;;) {
        const r = parseRecord(buf, off);
        if (!r.ok) break; // preallocated zeros or a torn tail: the end of this segment's records
        off = r.next;
        if (r.record.type !== RecordType.HardState) continue;
        hardStates++;
        const hs = r.record.hardState;
        if (hs.term < term) findings.push({ check: 'term-regression', detail: `${m.id} ${file}: term ${term} then ${hs.term}` });
        if (hs.term === term && vote !== null && hs.vote !== null && hs.vote !== vote) {
          findings.push({ check: 'double-vote', detail: `${m.id} ${file}: voted ${vote} then ${hs.vote} in term ${term}` });
        }
        if (hs.term !== term) vote = hs.vote;
        else if (hs.vote !== null) vote = hs.vote;
        term = Math.max(term, hs.term);
      }
    }
    maxTerm[m.id] = term;
  }
  return { members: members.length, hardStates, maxTerm };
}

/**
 * Samples every running member's /cluster/status through the run:
 *  - the term a member reports never goes down (per id, across restarts);
 *  - a member reporting `storage_failed` when no disk fault was injected is a finding (a false storage
 *    failure); it is then restarted, as the liveness probe on /healthz would in Kubernetes, so the run goes on.
 */
export class Monitor {
  private readonly last = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  samples = 0;
  livenessRestarts = 0;

  constructor(
    private readonly c: ChaosCluster,
    private readonly findings: Finding[],
    private readonly now: () => number,
    private readonly opts: { storageFaultsInjected: boolean } = { storageFaultsInjected: false },
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await Promise.all(this.c.running().map(async (m) => {
          let s;
          try {
            s = await this.c.status(m, 500);
          } catch {
            return; // unreachable right now; the next sample will do
          }
          this.samples++;
          const prev = this.last.get(m.id) ?? 0;
          if (s.term < prev) this.findings.push({ check: 'term-regression', detail: `${m.id} reported term ${s.term} after ${prev} at ${this.now().toFixed(0)} ms` });
          this.last.set(m.id, Math.max(prev, s.term));
          if (s.storage_failed && m.state === 'running' && !this.stopped) {
            if (!this.opts.storageFaultsInjected) {
              const why = m.tail.filter((l) => l.includes('"fatal"')).slice(-1)[0] ?? '';
              this.findings.push({ check: 'false-storage-failure', detail: `${m.id} reports storage_failed at ${this.now().toFixed(0)} ms with no disk fault injected: ${why.slice(0, 300)}` });
            }
            this.livenessRestarts++;
            await this.c.kill(m.id);
            this.c.restart(m.id);
          }
        }));
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
