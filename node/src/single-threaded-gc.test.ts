import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const MODULE = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'single-threaded-gc.js')).href;

/** Runs a script that imports the module first (as main.ts does) and reports how it ended up running. */
async function runProbe(env: Record<string, string>, nodeArgs: string[] = []): Promise<{ execArgv: string[]; argv: string[]; marker: string | undefined }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gc-probe-'));
  try {
    const script = path.join(dir, 'probe.mjs');
    writeFileSync(script, `await import(${JSON.stringify(MODULE)});\nconsole.log(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2), marker: process.env.PROBE_MARKER }));\n`);
    const { stdout } = await promisify(execFile)(process.execPath, [...nodeArgs, script, 'a1', 'a2'], { env: { ...process.env, ...env, PROBE_MARKER: 'kept' }, timeout: 20_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as { execArgv: string[]; argv: string[]; marker: string | undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('single-threaded-gc: the node process collects garbage on each thread itself', () => {
  it('a process started without --single-threaded-gc replaces itself with one started with it, keeping arguments and environment', async () => {
    const r = await runProbe({ STEGO_GC: '' }, ['--no-warnings']);
    expect(r.execArgv).to.include('--single-threaded-gc');
    expect(r.execArgv).to.include('--no-warnings');
    expect(r.argv).to.deep.equal(['a1', 'a2']);
    expect(r.marker).to.equal('kept');
  });

  it("STEGO_GC=parallel keeps V8's default collector", async () => {
    const r = await runProbe({ STEGO_GC: 'parallel' });
    expect(r.execArgv).not.to.include('--single-threaded-gc');
  });

  it('started with the flag, it runs as it is', async () => {
    const r = await runProbe({ STEGO_GC: '' }, ['--single-threaded-gc']);
    expect(r.execArgv.filter((a) => a === '--single-threaded-gc')).to.have.length(1);
  });
});
