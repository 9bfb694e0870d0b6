// Real process, real SIGKILL while an incremental snapshot is being written, committed, linked as a pack,
// switched to or collected in the background and appends and deletes go on: after a restart (newest
// snapshot's manifest and the packs it names + the log after it) every acknowledged object is there,
// byte for byte, the state loads, and no pack is left that nothing needs.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DurableLog } from '../storage/durable-log.js';
import { decodeCommand } from './commands.js';
import { ObjectStore } from './object-store.js';

const CHILD = fileURLToPath(new URL('./snapshots-crash-child.js', import.meta.url));

interface Round {
  acks: Map<string, string>;
  /** The kill landed between "snap" and "snapped". */
  midSnapshot: boolean;
  /** The last phase of the snapshot reached before the kill ("snap": still writing its data). */
  phase: string;
}

/**
 * Runs the child until it starts its second snapshot (the first moved objects onto a file, so this one
 * copies bytes from a snapshot file as well as from memory), then SIGKILLs it `delayMs` later.
 */
function runAndKill(dir: string, term: number, delayMs: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(term)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks = new Map<string, string>();
    let snapping = false;
    let phase = 'snap';
    let started = 0;
    let pending = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child took no snapshot in time; stderr: ${stderr}`));
    }, 60_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) {
        const [kind, a, b] = l.split(' ');
        if (kind === 'ack') acks.set(a!, b!);
        else if (kind === 'snap') [snapping, phase] = [true, 'snap'];
        else if (kind === 'phase') phase = a!;
        else if (kind === 'snapped') [snapping, phase] = [false, 'snapped'];
        if (kind === 'snap' && ++started === 2) {
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // the last line may be cut by the kill; a cut ack was never fully reported, so it is not counted
      if (signal === 'SIGKILL') resolve({ acks, midSnapshot: snapping, phase });
      else reject(new Error(`child exited early (code ${code}); stderr: ${stderr}`));
    });
  });
}

describe('cluster: kill -9 while a snapshot is written in the background', function () {
  this.timeout(180_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'stego-snapcrash-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loses no acknowledged object and leaves a loadable state', async () => {
    const acked = new Map<string, string>();
    let mid = 0;
    let packsSeen = 0;
    const phases: string[] = [];
    const rounds = 6;
    for (let term = 1; term <= rounds; term++) {
      const round = await runAndKill(dir, term, Math.floor(Math.random() * 120));
      for (const [id, sha] of round.acks) acked.set(id, sha);
      if (round.midSnapshot) mid++;
      phases.push(round.phase);

      // what a restarting node does: the newest snapshot's manifest, then the log after it
      const { log, state } = await DurableLog.open(path.join(dir, 'raft'), { fsyncDeadlineMs: 5000, logger: { warn: () => undefined } });
      const packsDir = path.join(dir, 'raft', 'packs');
      const store = await ObjectStore.open({ packsDir });
      const latest = log.latestSnapshot();
      if (latest) await store.loadFromSnapshot(latest.path); // throws if a pack it names is missing
      for (const e of state.entries) store.apply(decodeCommand(e.data));
      await store.collectGarbage(() => log.snapshots());
      packsSeen = Math.max(packsSeen, readdirSync(packsDir).length);
      for (const [id, sha] of acked) {
        const bytes = await store.read(id);
        expect(bytes, `acknowledged object ${id} missing after the kill in round ${term}`).to.not.equal(undefined);
        expect(createHash('sha256').update(bytes!).digest('hex'), `bytes of ${id}`).to.equal(sha);
      }
      await store.close();
      await log.close();
    }
    // the kills are timed from the start of a snapshot: most land while it is being written
    expect(mid, 'kills that landed mid-snapshot').to.be.at.least(1);
    if (process.env.STORAGE_TEST_VERBOSE) console.log(`      kills mid-snapshot: ${mid}/${rounds} (after ${phases.join(', ')}), acknowledged objects: ${acked.size}, most packs: ${packsSeen}`);
    // at least SNAPSHOT_EVERY = 300 entries per round, one in three an acknowledged put
    expect(acked.size).to.be.greaterThan(rounds * 100);
    expect(packsSeen, 'packs on disk after a restart and its collection').to.be.within(1, 17);
  });
});
