import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { photoPng } from '../stego/png/synthetic.js';
import { defaultCoverPath } from '../assets.js';

const CLI = fileURLToPath(new URL('./stego.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function stego(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...opts.env };
    delete env.STEGO_PASSPHRASE;
    Object.assign(env, opts.env);
    execFile(process.execPath, [CLI, ...args], { cwd: opts.cwd, env, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('stego CLI', function () {
  let dir: string;
  let cover: string;
  const at = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stego-cli-'));
    cover = at('cover.png');
    await writeFile(cover, await photoPng(64, 48));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints usage with --help and exits 0', async () => {
    const r = await stego(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.include('stego embed').and.include('stego extract').and.include('stego capacity');
  });

  it('exits 2 with a hint on usage errors', async () => {
    for (const args of [[], ['frobnicate'], ['embed', '--bogus'], ['embed', '-i', cover, '-m', 'x'], ['embed', '-i', cover, '-o', at('x.png')], ['embed', '-i', cover, '-o', at('x.png'), '-m', 'a', '-f', cover], ['extract'], ['capacity', '-i', cover, '--max-pixels', 'lots']]) {
      const r = await stego(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.match(/^stego: .+\nRun 'stego --help' for usage\.\n$/);
    }
  });

  it('round-trips a text message to stdout and to a file', async () => {
    const message = 'hello from the CLI\nwith a newline — and UTF-8 ✓';
    const embedded = await stego(['embed', '-i', cover, '-o', at('text.png'), '-m', message]);
    expect(embedded.code, embedded.stderr).to.equal(0);
    const out = PNG.sync.read(await readFile(at('text.png')));
    expect([out.width, out.height]).to.deep.equal([64, 48]);
    const extracted = await stego(['extract', '-i', at('text.png')]);
    expect(extracted.code, extracted.stderr).to.equal(0);
    expect(extracted.stdout).to.equal(message);
    expect((await stego(['extract', '-i', at('text.png'), '-o', at('text.txt')])).code).to.equal(0);
    expect(await readFile(at('text.txt'), 'utf8')).to.equal(message);
  });

  it('round-trips a binary file under its embedded name, never overwriting', async () => {
    const data = Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 31 + 7) & 0xff));
    await writeFile(at('blob.bin'), data);
    expect((await stego(['embed', '-i', cover, '-o', at('file.png'), '-f', at('blob.bin')])).code).to.equal(0);
    const outDir = await mkdtemp(join(dir, 'out-'));
    const first = await stego(['extract', '-i', at('file.png')], { cwd: outDir });
    expect(first.code, first.stderr).to.equal(0);
    expect((await readFile(join(outDir, 'blob.bin'))).equals(data)).to.equal(true);
    const again = await stego(['extract', '-i', at('file.png')], { cwd: outDir });
    expect(again.code).to.equal(3);
    expect(again.stderr).to.include('exists');
    expect((await stego(['extract', '-i', at('file.png'), '-o', at('renamed.bin')])).code).to.equal(0);
    expect((await readFile(at('renamed.bin'))).equals(data)).to.equal(true);
  });

  it('encrypts with -p or STEGO_PASSPHRASE; a wrong passphrase finds nothing (exit 1)', async () => {
    expect((await stego(['embed', '-i', cover, '-o', at('enc.png'), '-m', 'secret', '-p', 'pw'])).code).to.equal(0);
    const viaEnv = await stego(['extract', '-i', at('enc.png')], { env: { STEGO_PASSPHRASE: 'pw' } });
    expect(viaEnv.stdout).to.equal('secret');
    const wrong = await stego(['extract', '-i', at('enc.png'), '-p', 'nope']);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/^stego: no_payload: nothing found; if something was hidden with a passphrase, supply the right one/);
  });

  it('prints capacity as JSON, and a payload over it is refused naming the capacity', async () => {
    const r = await stego(['capacity', '-i', cover]);
    expect(r.code).to.equal(0);
    const c = JSON.parse(r.stdout) as { width: number; height: number; capacity_bytes: number };
    expect(c).to.include({ width: 64, height: 48 });
    const over = await stego(['embed', '-i', cover, '-o', at('over.png'), '-m', 'x'.repeat(c.capacity_bytes + 1)]);
    expect(over.code).to.equal(1);
    expect(over.stderr).to.include('capacity_exceeded').and.include(String(c.capacity_bytes));
  });

  it('refuses non-PNG input (exit 1), images over --max-pixels (exit 1) and missing files (exit 3)', async () => {
    await writeFile(at('not.png'), 'definitely not a png');
    const notPng = await stego(['capacity', '-i', at('not.png')]);
    expect([notPng.code, notPng.stderr.split(':')[1]?.trim()]).to.deep.equal([1, 'not_png']);
    const big = await stego(['capacity', '-i', cover, '--max-pixels', '100']);
    expect([big.code, big.stderr.split(':')[1]?.trim()]).to.deep.equal([1, 'image_too_large']);
    const missing = await stego(['extract', '-i', at('nope.png')]);
    expect(missing.code).to.equal(3);
    expect(missing.stderr).to.include('cannot read');
  });

  it('embeds into the bundled cover when -i is absent', async function () {
    const bundled = defaultCoverPath();
    if (!existsSync(bundled)) this.skip();
    const r = await stego(['embed', '-o', at('default.png'), '-m', 'on the cover']);
    expect(r.code, r.stderr).to.equal(0);
    const a = PNG.sync.read(await readFile(bundled));
    const b = PNG.sync.read(await readFile(at('default.png')));
    expect([b.width, b.height]).to.deep.equal([a.width, a.height]);
  });
});
