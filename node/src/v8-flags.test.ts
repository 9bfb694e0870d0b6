import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { wantedV8Flags } from './v8-flags.js';

const MODULE = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'v8-flags.js')).href;

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

describe('v8-flags: the node process runs with the V8 flags it needs', () => {
  it('wants single-threaded collection and eager, kept compilation unless opted out', () => {
    expect(wantedV8Flags({})).to.deep.equal(['--single-threaded-gc', '--no-lazy', '--no-flush-bytecode']);
    expect(wantedV8Flags({ STEGO_GC: 'parallel' })).to.deep.equal(['--no-lazy', '--no-flush-bytecode']);
    expect(wantedV8Flags({ STEGO_COMPILE: 'lazy' })).to.deep.equal(['--single-threaded-gc']);
    expect(wantedV8Flags({ STEGO_GC: 'parallel', STEGO_COMPILE: 'lazy' })).to.deep.equal([]);
  });

  it('a process started without the flags replaces itself with one started with them, keeping arguments and environment', async () => {
    const r = await runProbe({ STEGO_GC: '', STEGO_COMPILE: '' }, ['--no-warnings']);
    expect(r.execArgv).to.include.members(['--single-threaded-gc', '--no-lazy', '--no-flush-bytecode', '--no-warnings']);
    expect(r.argv).to.deep.equal(['a1', 'a2']);
    expect(r.marker).to.equal('kept');
  });

  it("STEGO_GC=parallel keeps V8's default collector, STEGO_COMPILE=lazy its lazy compilation", async () => {
    const gc = await runProbe({ STEGO_GC: 'parallel', STEGO_COMPILE: '' });
    expect(gc.execArgv).not.to.include('--single-threaded-gc');
    expect(gc.execArgv).to.include('--no-lazy');
    const lazy = await runProbe({ STEGO_GC: '', STEGO_COMPILE: 'lazy' });
    expect(lazy.execArgv).to.include('--single-threaded-gc');
    expect(lazy.execArgv).not.to.include.members(['--no-lazy']);
    expect(lazy.execArgv).not.to.include('--no-flush-bytecode');
  });

  it('started with some of the flags, it adds only the missing ones', async () => {
    const r = await runProbe({ STEGO_GC: '', STEGO_COMPILE: '' }, ['--single-threaded-gc']);
    expect(r.execArgv.filter((a) => a === '--single-threaded-gc')).to.have.length(1);
    expect(r.execArgv).to.include.members(['--no-lazy', '--no-flush-bytecode']);
  });

  it('started with all of them, it runs as it is', async () => {
    const r = await runProbe({ STEGO_GC: '', STEGO_COMPILE: '' }, ['--no-flush-bytecode', '--no-lazy', '--single-threaded-gc']);
    expect(r.execArgv).to.deep.equal(['--no-flush-bytecode', '--no-lazy', '--single-threaded-gc']);
  });
});
