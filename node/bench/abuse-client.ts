// The attacking client of bench:abuse, built to cost its own machine as little as possible: every hostile
// body (multipart framing included) is built once as bytes and each request hands that same Buffer to
// node:http, which writes it to the socket without re-encoding or copying it in JavaScript. fetch with a
// FormData re-encoded the whole multipart body on every request (tens of ms of CPU for a 4.8 MB file), so
// on a shared machine the attacker's own CPU was measured as the system's.
//
// Every connection is opened from ATTACKER_ADDRESS (127.0.0.2, a loopback address distinct from the
// well-behaved client's 127.0.0.1): a front door that limits per client address then sees the attacker as
// the separate client it would be on a real network.
import { Agent, request } from 'node:http';

export const ATTACKER_ADDRESS = '127.0.0.2';

export interface Outcome {
  status: number;
  code?: string;
  retryAfter?: string;
  ended?: string;
}

/** A request whose bytes are fixed: built once, sent any number of times. */
export interface BuiltRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Declare Content-Length but send no body (the server must answer from the head alone). */
  declaredOnly?: number;
}

export interface MultipartPart {
  name: string;
  filename?: string;
  data: Buffer;
}

/** A multipart/form-data body as bytes, with its Content-Type (a file part is image/png). */
export function multipart(parts: MultipartPart[]): { body: Buffer; type: string } {
  const b = 'abuse-boundary-7d41c0';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `Content-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"\r\nContent-Type: image/png` : ''}`;
    chunks.push(Buffer.from(`--${b}\r\n${disposition}\r\n\r\n`), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${b}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${b}` };
}

/** A POST of a form with a PNG in `file` and the given text fields. */
export function formRequest(path: string, file: Buffer, fields: Record<string, string> = {}, headers: Record<string, string> = {}): BuiltRequest {
  const m = multipart([{ name: 'file', filename: 'file.png', data: file }, ...Object.entries(fields).map(([name, v]) => ({ name, data: Buffer.from(v) }))]);
  return { method: 'POST', path, headers: { ...headers, 'content-type': m.type }, body: m.body };
}

/** A POST of raw PNG bytes (the object store's single-part form). */
export function pngRequest(path: string, png: Buffer, headers: Record<string, string> = {}): BuiltRequest {
  return { method: 'POST', path, headers: { ...headers, 'content-type': 'image/png' }, body: png };
}

export class AttackClient {
  /** Keep-alive where the server allows it (a refused upload's connection is closed by the server). */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  constructor(private readonly localAddress = ATTACKER_ADDRESS) {}

  /** Sends `r` to base (http://host:port) and resolves with the answer, or how the connection ended. */
  send(base: string, r: BuiltRequest, timeoutMs = 30_000): Promise<Outcome> {
    const u = new URL(base);
    const length = r.declaredOnly ?? r.body?.length ?? 0;
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(o);
      };
      const req = request({
        host: u.hostname,
        port: Number(u.port),
        method: r.method,
        path: r.path,
        localAddress: this.localAddress,
        agent: this.agent,
        headers: { ...r.headers, ...(length > 0 || r.body ? { 'content-length': String(length) } : {}) },
      });
      const timer = setTimeout(() => {
        finish({ status: 0, ended: 'timeout' });
        req.destroy();
      }, timeoutMs);
      let answering = false;
      req.on('response', (res) => {
        answering = true;
        const parts: Buffer[] = [];
        const answered = (ended?: string): void => {
          const text = Buffer.concat(parts).toString('utf8');
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
          } catch {
            code = res.statusCode! >= 400 ? (ended ? undefined : 'not-json') : undefined;
          }
          const ra = res.headers['retry-after'];
          finish({ status: res.statusCode!, code, retryAfter: Array.isArray(ra) ? ra[0] : ra, ended });
          // Stop at the answer, as fetch and curl do: a refused upload's unsent rest is dropped with the
          // connection instead of being written into the server's lingering close (a declared-only request
          // never sends its body either, so its connection cannot carry another request).
          if (r.declaredOnly || !req.writableFinished) req.destroy();
        };
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => answered());
        res.on('error', (e: NodeJS.ErrnoException) => answered(`${e.code ?? 'error'} after the answer`));
        res.on('aborted', () => answered('aborted after the answer'));
        res.on('close', () => answered('closed after the answer'));
      });
      // an early answer followed by the server closing is the expected end of a refused upload: only an
      // error before any answer is the outcome
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (!answering) finish({ status: 0, ended: e.code ?? 'error' });
      });
      if (r.declaredOnly) req.flushHeaders();
      else req.end(r.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The calling thread's own CPU seconds (user + system), not the process's. */
export function threadCpuSeconds(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1e6;
}
