// Hostile-client building blocks shared by bench:abuse and the memory-bound test: raw HTTP over
// sockets (so a client can declare one length, send less and stall, or never read an answer), RSS
// sampling of node processes from /proc, and the big valid PNG a slow reader downloads.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { encodePng } from '../../src/stego/png/encode.js';
import type { Raster } from '../../src/stego/raster.js';

export interface Target {
  host: string;
  port: number;
}

export function targetOf(url: string): Target {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

export interface RawOutcome {
  /** HTTP status, or 0 when the connection ended without an answer. */
  status: number;
  code?: string;
  retryAfter?: string;
  /** How the connection ended when there was no answer (reset, closed, timeout). */
  ended?: string;
  ms: number;
}

/** Parses the head (and a JSON body when complete) of an answer out of raw bytes. */
function parseAnswer(buf: Buffer): { status: number; headers: Record<string, string>; body?: string } | undefined {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? -1);
  const rest = text.slice(end + 4);
  return { status: Number(statusLine!.split(' ')[1]), headers, body: length >= 0 && rest.length >= length ? rest.slice(0, length) : undefined };
}

function codeOf(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

export interface StallOptions {
  path: string;
  headers?: Record<string, string>;
  /** Content-Length declared. */
  declared: number;
  /** Bytes actually sent before stalling. */
  send: number;
  /** Give up waiting after this long (the node should have cut or answered well before). */
  giveUpMs: number;
}

/**
 * A client that declares a body, sends part of it and stalls: resolves with the answer (a refusal before
 * the body) or with how the node ended the connection (idle timeout).
 */
export function stalledUpload(t: Target, o: StallOptions): Promise<RawOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = connect(t.port, t.host);
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r: Omit<RawOutcome, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const giveUp = setTimeout(() => finish({ status: 0, ended: 'still open' }), o.giveUpMs);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const a = parseAnswer(buf);
      if (a && a.body !== undefined) finish({ status: a.status, code: codeOf(a.body), retryAfter: a.headers['retry-after'] });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish({ status: 0, ended: e.code ?? 'error' }));
    socket.on('close', () => finish({ status: 0, ended: 'closed' }));
    const head = Object.entries({ 'content-type': 'multipart/form-data; boundary=x', ...o.headers, 'content-length': String(o.declared) })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`POST ${o.path} HTTP/1.1\r\nhost: ${t.host}\r\n${head}\r\n`);
    const piece = Buffer.alloc(64 * 1024, 0x2d);
    let sent = 0;
    const pump = (): void => {
      while (sent < o.send && !done) {
        const n = Math.min(piece.length, o.send - sent);
        sent += n;
        if (!socket.write(piece.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

/**
 * A client that asks for a download and reads nothing for holdMs, then drains what is left. A node that
 * cut it meanwhile shows as `ended: 'cut'` (fewer bytes than Content-Length, then the end of the
 * stream); one that did not as 'complete' or, when even draining stalls, 'held'. (A paused client cannot
 * see the cut earlier: the FIN waits behind the data it does not read.)
 */
export function neverReadingDownload(t: Target, path: string, headers: Record<string, string>, holdMs: number): Promise<RawOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = connect(t.port, t.host);
    let status = 0;
    let retryAfter: string | undefined;
    let code: string | undefined;
    let declared = -1;
    let bodyBytes = 0;
    let head = Buffer.alloc(0);
    let done = false;
    let draining = false;
    const finish = (ended: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (quiet) clearTimeout(quiet);
      socket.destroy();
      resolve({ status, code, retryAfter, ended, ms: performance.now() - t0 });
    };
    // after the hold: drain; 'held' once nothing more arrives for 2 s without the stream ending
    let quiet: NodeJS.Timeout | undefined;
    const armQuiet = (): void => {
      if (quiet) clearTimeout(quiet);
      quiet = setTimeout(() => finish('held'), 2_000);
      quiet.unref();
    };
    const timer = setTimeout(() => {
      draining = true;
      socket.resume();
      armQuiet();
    }, holdMs);
    socket.on('data', (d: Buffer) => {
      if (status === 0) {
        head = Buffer.concat([head, d]);
        const a = parseAnswer(head);
        if (!a) return;
        status = a.status;
        retryAfter = a.headers['retry-after'];
        code = codeOf(a.body);
        declared = Number(a.headers['content-length'] ?? -1);
        bodyBytes = head.length - head.indexOf('\r\n\r\n') - 4;
      } else {
        bodyBytes += d.length;
      }
      if (declared >= 0 && bodyBytes >= declared) return finish('complete');
      if (draining) armQuiet();
      // stop reading: the kernel buffers fill and the node must stop writing
      if (!draining) socket.pause();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
    socket.on('close', () => finish(declared >= 0 && bodyBytes < declared ? 'cut' : 'closed'));
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\nhost: ${t.host}\r\n${lines}\r\n`);
  });
}

/** Opens `count` TCP connections that send nothing (or half a request head); resolves once all are closed or after holdMs. */
export async function idleConnections(t: Target, count: number, holdMs: number): Promise<{ cutByServer: number; held: number }> {
  const sockets: Socket[] = [];
  let cut = 0;
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      new Promise<void>((resolve) => {
        const s = connect(t.port, t.host, () => {
          if (i % 2 === 0) s.write('POST /api/embed HTTP/1.1\r\nhost: x\r\n'); // never finishes its head
          resolve();
        });
        s.on('error', () => resolve());
        s.on('close', () => {
          cut++;
        });
        sockets.push(s);
      }),
    ),
  );
  await new Promise((r) => setTimeout(r, holdMs));
  const held = sockets.filter((s) => !s.destroyed).length;
  for (const s of sockets) s.destroy();
  return { cutByServer: cut, held };
}

/** Resident set size of a process in bytes (VmRSS), or 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the RSS of `pids()` every intervalMs; peak() since the last reset(). */
export class RssSampler {
  private peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: () => number[], intervalMs = 50) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    for (const pid of this.pids()) this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, rssOf(pid)));
  }

  reset(): void {
    this.peaks = new Map();
    this.sample();
  }

  /** Highest RSS of any sampled process since reset(). */
  peak(): number {
    this.sample();
    return Math.max(0, ...this.peaks.values());
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** A valid RGB PNG of about `bytes` bytes (random pixels barely compress): what a slow reader downloads. */
export async function bigRandomPng(bytes: number, seed = 1): Promise<Buffer> {
  const side = Math.floor(Math.sqrt(bytes / 3.02));
  const data = new Uint8Array(side * side * 3);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  const raster: Raster = {
    width: side,
    height: side,
    colorType: 2,
    bitDepth: 8,
    channels: 3,
    hasAlpha: false,
    data,
    chunks: [],
    source: { width: side, height: side, bitDepth: 8, colorType: 2, interlace: 0 },
  };
  return encodePng(raster);
}
