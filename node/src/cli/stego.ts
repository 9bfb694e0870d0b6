#!/usr/bin/env node
// `stego`: the steganography engine on local files, the same engine the HTTP API runs in its workers.
// Exit codes: 0 success, 1 the engine refused the input (code printed, e.g. capacity_exceeded),
// 2 usage error, 3 file system error.
import { parseArgs } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { embed, extract, capacity, type EngineOptions, type Payload } from '../stego/engine.js';
import { StegoError } from '../stego/errors.js';
import { safeFilename } from '../filename.js';
import { defaultCoverPath } from '../assets.js';

export const EXIT = { ok: 0, refused: 1, usage: 2, io: 3 } as const;

const HELP = `Usage:
  stego embed    [-i cover.png] -o out.png (-m "text" | -f file) [-p passphrase]
  stego extract  -i stego.png [-o outfile] [-p passphrase]
  stego capacity -i image.png [-p passphrase]

Hides a text message or a file in a PNG, recovers it, or reports how many payload bytes fit.

Options:
  -i, --input FILE       input PNG (embed: defaults to the bundled cover, assets/cover.png)
  -o, --output FILE      embed: the PNG to write (required); extract: where to write the payload
                         (text defaults to stdout; a file payload to ./<its embedded name>, never
                         overwriting an existing file)
  -m, --message TEXT     text to hide
  -f, --file FILE        file to hide (its base name is stored with it)
  -p, --passphrase PASS  recommended. Encrypts the payload (AES-256-GCM, scrypt keys) and derives the
                         pixel order from the passphrase: without it nothing in the image shows that a
                         payload is there, and extract answers no_payload exactly as for a clean image.
                         Without a passphrase the payload is public: anyone with this tool can find and
                         read it. The environment variable STEGO_PASSPHRASE is used when -p is absent
                         (keeps it out of ps)
      --max-pixels N     refuse images with more pixels than N (default 40000000)
  -h, --help             this text

capacity prints JSON: {"width":W,"height":H,"capacity_bytes":N} (payload bytes that fit with these
options; a file payload also stores its name).

extract says no_payload ("nothing found; if something was hidden with a passphrase, supply the right
one") both for an image without payload and for a wrong or missing passphrase: by design, the two are
indistinguishable. Images written by older versions (format 1) are still read.

Exit status: 0 ok, 1 the input was refused (the error code is printed), 2 usage error, 3 file error.
`;

class UsageError extends Error {}

class FileError extends Error {}

interface Io {
  stdout: (chunk: string | Uint8Array) => void;
  stderr: (line: string) => void;
}

type Values = {
  input?: string;
  output?: string;
  message?: string;
  file?: string;
  passphrase?: string;
  'max-pixels'?: string;
  help?: boolean;
};

function parse(argv: string[]): { command: string | undefined; values: Values } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        input: { type: 'string', short: 'i' },
        output: { type: 'string', short: 'o' },
        message: { type: 'string', short: 'm' },
        file: { type: 'string', short: 'f' },
        passphrase: { type: 'string', short: 'p' },
        'max-pixels': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    return { command: positionals[0], values };
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
}

function engineOptions(v: Values): EngineOptions {
  const opts: EngineOptions = {};
  const passphrase = v.passphrase ?? process.env.STEGO_PASSPHRASE;
  if (passphrase) opts.passphrase = passphrase;
  if (v['max-pixels'] !== undefined) {
    const n = Number(v['max-pixels']);
    if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--max-pixels must be a positive integer, got '${v['max-pixels']}'`);
    opts.maxPixels = n;
  }
  return opts;
}

async function readInput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new FileError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function writeOutput(path: string, data: string | Uint8Array, exclusive: boolean): Promise<void> {
  try {
    await writeFile(path, data, { flag: exclusive ? 'wx' : 'w' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'EEXIST' ? ' (exists; choose another name with -o)' : '';
    throw new FileError(`cannot write ${path}: ${err.message}${hint}`);
  }
}

function need(v: string | undefined, flag: string, command: string): string {
  if (v === undefined || v === '') throw new UsageError(`${command} needs ${flag}`);
  return v;
}

async function payloadFrom(v: Values): Promise<Payload> {
  if (v.message !== undefined && v.file !== undefined) throw new UsageError('embed takes -m TEXT or -f FILE, not both');
  if (v.message !== undefined) return { kind: 'text', text: v.message };
  if (v.file !== undefined) return { kind: 'file', filename: safeFilename(basename(v.file)), data: await readInput(v.file) };
  throw new UsageError('embed needs something to hide: -m TEXT or -f FILE');
}

async function runEmbed(v: Values, io: Io): Promise<void> {
  const output = need(v.output, '-o OUTPUT.png', 'embed');
  const payload = await payloadFrom(v);
  const opts = engineOptions(v);
  const png = await readInput(v.input ?? defaultCoverPath());
  const out = await embed(png, payload, opts);
  await writeOutput(output, out, false);
  io.stderr(`wrote ${output} (${out.length} bytes)`);
}

async function runExtract(v: Values, io: Io): Promise<void> {
  const opts = engineOptions(v);
  const payload = await extract(await readInput(need(v.input, '-i INPUT.png', 'extract')), opts);
  if (payload.kind === 'text') {
    if (v.output === undefined) io.stdout(payload.text);
    else await writeOutput(v.output, payload.text, false);
    return;
  }
  const target = v.output ?? safeFilename(payload.filename);
  await writeOutput(target, payload.data, v.output === undefined);
  io.stderr(`wrote ${target} (${payload.data.byteLength} bytes; embedded name ${JSON.stringify(payload.filename)})`);
}

async function runCapacity(v: Values, io: Io): Promise<void> {
  const opts = engineOptions(v);
  const c = await capacity(await readInput(need(v.input, '-i INPUT.png', 'capacity')), opts);
  io.stdout(`${JSON.stringify({ width: c.width, height: c.height, capacity_bytes: c.capacityBytes })}\n`);
}

const COMMANDS: Record<string, (v: Values, io: Io) => Promise<void>> = {
  embed: runEmbed,
  extract: runExtract,
  capacity: runCapacity,
};

export async function runCli(argv: string[], io: Io): Promise<number> {
  try {
    const { command, values } = parse(argv);
    if (values.help || command === 'help') {
      io.stdout(HELP);
      return EXIT.ok;
    }
    if (command === undefined) throw new UsageError('missing command (embed, extract or capacity)');
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command '${command}' (embed, extract or capacity)`);
    await run(values, io);
    return EXIT.ok;
  } catch (e) {
    return report(e, io);
  }
}

function report(e: unknown, io: Io): number {
  if (e instanceof UsageError) {
    io.stderr(`stego: ${e.message}\nRun 'stego --help' for usage.`);
    return EXIT.usage;
  }
  if (e instanceof FileError) {
    io.stderr(`stego: ${e.message}`);
    return EXIT.io;
  }
  if (e instanceof StegoError) {
    io.stderr(`stego: ${e.code}: ${e.message}`);
    return EXIT.refused;
  }
  throw e;
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const io: Io = {
    stdout: (chunk) => process.stdout.write(chunk),
    stderr: (line) => process.stderr.write(`${line}\n`),
  };
  process.exitCode = await runCli(process.argv.slice(2), io);
}
