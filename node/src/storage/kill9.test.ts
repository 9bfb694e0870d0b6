// Real process, real SIGKILL: nothing the log acknowledged may be missing or different after a restart.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DurableLog } from './durable-log.js';
import { entryData, tempDir } from './testing/helpers.js';

const CHILD = fileURLToPath(new URL('./testing/append-child.js', import.meta.url));

type Ack = [first: number, last: number];

/** Runs the child until it has acknowledged `killAfter` more saves, then SIGKILLs it. Returns the acks in order. */
function runAndKill(dir: string, term: number, killAfter: number, deadlineMs: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(term), String(1 + (term % 3) * 15)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let pending = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child acknowledged only ${acks.length}/${killAfter} within ${deadlineMs} ms; stderr: ${stderr}`));
    }, deadlineMs);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) acks.push(l.split(' ').map(Number) as Ack);
      if (!killed && acks.length >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // a line cut in half by the kill was never fully reported: ignore it
      if (signal === 'SIGKILL') resolve(acks);
      else reject(new Error(`child exited early (code ${code}); stderr: ${stderr}`));
    });
  });
}

describe('storage/kill -9', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('kill9')));
  afterEach(() => t.cleanup());

  it('keeps every acknowledged entry across repeated SIGKILLs at random moments', async () => {
    // the log the child has acknowledged: index → term (an overwrite replaces the suffix)
    let ackedTerm = new Map<number, number>();
    let maxTerm = 0;
    const rounds = 6;
    let tornTails = 0;
    let totalAcks = 0;
    let overwrites = 0;
    for (let term = 1; term <= rounds; term++) {
      const killAfter = 100 + Math.floor(Math.random() * 400);
      const acks = await runAndKill(t.dir, term, killAfter, 60_000);
      expect(acks.length).to.be.at.least(killAfter);
      totalAcks += acks.length;
      overwrites += acks.filter(([first, last]) => last > first).length;
      for (const [first, last] of acks) {
        for (const i of [...ackedTerm.keys()]) if (i >= first) ackedTerm.delete(i);
        for (let i = first; i <= last; i++) ackedTerm.set(i, term);
      }
      if (acks.length > 0) maxTerm = term;

      const { log, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000, logger: { warn: () => void tornTails++ } });
      const byIndex = new Map(state.entries.map((e) => [e.index, e]));
      for (const [index, term] of ackedTerm) {
        if (index <= state.snapshot.index) continue; // covered by the snapshot
        const e = byIndex.get(index);
        expect(e, `acknowledged entry ${index} missing after kill in round ${term}`).to.not.equal(undefined);
        expect(e!.term).to.equal(term);
        expect(Buffer.from(e!.data).equals(Buffer.from(entryData(index, term))), `content of ${index}`).to.equal(true);
      }
      expect(state.hardState.term).to.be.at.least(maxTerm);
      // written-but-unacknowledged entries may survive too; from now on they are part of the log
      ackedTerm = new Map(state.entries.map((e) => [e.index, e.term]));
      const latest = log.latestSnapshot();
      if (latest) expect(readFileSync(latest.path, 'utf8')).to.equal(`snapshot@${latest.meta.index}`);
      await log.close();
    }
    expect(totalAcks).to.be.greaterThan(rounds * 100);
    // ≥ 600 acknowledged entries: at least two snapshots (every 250) were taken and the log compacted
    const { log, state } = await DurableLog.open(t.dir, { fsyncDeadlineMs: 5000 });
    expect(state.snapshot.index).to.be.greaterThan(0);
    expect(log.firstIndex()).to.be.greaterThan(1);
    await log.close();
    expect(overwrites, 'rounds after the first start by overwriting the tail').to.equal(rounds - 1);
    if (process.env.STORAGE_TEST_VERBOSE) console.log(`      recovery warnings: ${tornTails}, acks: ${totalAcks}`);
  });
});
