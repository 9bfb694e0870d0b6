// Embeds random payloads into many cover PNGs for the steganalysis bench (run.py): reads a JSON job list
// from the file named by argv[2], writes each stego PNG, prints one line when done. One process for all
// jobs, so the bench measures images, not Node start-up.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { embed } from '../../src/stego/engine.js';

interface Job {
  input: string;
  output: string;
  /** Bytes of random file data; the frame adds the filename byte, the name and its own overhead. */
  dataBytes: number;
  passphrase: string | null;
}

/** scrypt cost does not change a single embedded bit's statistics; 2^10 keeps a 2000-image run short. */
const BENCH_SCRYPT_LOG2N = 10;

const jobs = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Job[];
for (const job of jobs) {
  const opts = job.passphrase === null ? {} : { passphrase: job.passphrase, scryptLog2N: BENCH_SCRYPT_LOG2N };
  const out = await embed(fs.readFileSync(job.input), { kind: 'file', filename: 'p', data: randomBytes(job.dataBytes) }, opts);
  fs.writeFileSync(job.output, out);
}
console.log(`embedded ${jobs.length}`);
