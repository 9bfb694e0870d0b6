// Multipart parsing for every route that takes an image upload (the stego routes here, and the
// cluster's POST /api/objects), so field names, limits and validation errors are the same everywhere.
//
// Storage choice: uploads are kept in memory, never written to disk. formidable streams each file
// part into an in-memory Writable (fileWriteStreamHandler → UploadArena, one buffer of the declared
// Content-Length per request, reserved in the node's byte budget before reading: body-budget.ts; allocated
// once 1 MiB has arrived, its pages resident only as bytes arrive), so there are no temp files to leak on a crash or an
// aborted upload. A form has at most MAX_FORM_FIELDS text fields and MAX_FORM_FILES file parts (more:
// 413 too_many_fields / too_many_files); text fields must be valid UTF-8 (400 invalid_utf8: a
// replacement character would silently change a passphrase or a message). Memory bound per request: the file parts together are capped at the body
// limit (formidable's maxTotalFileSize, enforced chunk by chunk while streaming, so a chunked upload
// without Content-Length is cut off as soon as it crosses the limit) and the text fields together at
// the body limit too (maxFieldsSize); a request whose Content-Length is over the limit is refused
// before any byte is read (middleware/body-limit.ts). So one request holds at most ≈ 2 × bodyLimit
// while parsing, and ≈ 1 × bodyLimit afterwards.
import type { Context, Middleware } from 'koa';
import { koaBody } from 'koa-body';
import type { File, Part } from 'formidable';
import { StegoError } from '../stego/errors.js';
import type { Payload } from '../stego/engine.js';
import { ApiError } from './errors.js';
import { bodyTooLarge } from './middleware/body-limit.js';
import { safeFilename } from '../filename.js';
import { UploadArena } from './upload-arena.js';
import { MAX_FORM_FIELDS, MAX_FORM_FILES } from './http-config.js';
import { PngUploadScanner, type UploadScanLimits } from '../stego/png/upload-scan.js';

export interface StegoForm {
  /** The cover or stego PNG (`file` part). */
  file?: Buffer;
  /** Text to hide (`message` field). */
  message?: string;
  /** File to hide (`payload` part), with the client's file name reduced to a safe base name. */
  payload?: { filename: string; data: Buffer };
  /** Absent when the field is missing or empty. */
  passphrase?: string;
}

type FilePart = 'file' | 'payload';
type TextField = 'message' | 'passphrase';

const ARENA_STATE_KEY = 'uploadArena';
const INVALID_UTF8_STATE_KEY = 'invalidUtf8Fields';

/**
 * formidable decides "file or field" by the presence of a Content-Type header alone. Clients differ:
 * some send a file without Content-Type, some label a text field `text/plain`. Decide by filename.
 * Text fields are also checked as strict UTF-8 while they stream (formidable's own decoder would
 * replace bad bytes); the names of invalid ones are recorded in `invalid`.
 */
function classifyPart(invalid: Set<string>, fileParts: string[]) {
  return (part: Part, handle: (p: Part) => void): void => {
    if (part.originalFilename && !part.mimetype) part.mimetype = 'application/octet-stream';
    else if (!part.originalFilename && part.mimetype?.toLowerCase().startsWith('text/plain')) part.mimetype = null;
    if (!part.mimetype) checkUtf8(part, invalid);
    // formidable opens file parts in the order it meets them: the stream handler takes names in that order
    else fileParts.push(part.name ?? '');
    handle(part);
  };
}

function checkUtf8(part: Part, invalid: Set<string>): void {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const name = part.name ?? '';
  let ok = true;
  const attempt = (fn: () => void): void => {
    if (!ok) return;
    try {
      fn();
    } catch {
      ok = false;
      invalid.add(name);
    }
  };
  part.on('data', (b: Buffer) => attempt(() => decoder.decode(b, { stream: true })));
  part.on('end', () => attempt(() => decoder.decode()));
}

interface FormidableFailure {
  httpCode?: number;
  code?: number;
  message: string;
}

const FORMIDABLE_ABORTED = 1002;
const FORMIDABLE_MAX_FIELDS = 1007;
const FORMIDABLE_MAX_FILES = 1015;

function translateParseError(limitBytes: number) {
  return (err: Error): never => {
    const f = err as Error & FormidableFailure;
    // a check the image part failed while streaming (PngUploadScanner), passed through formidable
    if (err instanceof StegoError) throw err;
    if (f.code === FORMIDABLE_MAX_FIELDS) {
      throw new ApiError('too_many_fields', 413, `the form has more than ${MAX_FORM_FIELDS} text fields (the limit is ${MAX_FORM_FIELDS})`);
    }
    if (f.code === FORMIDABLE_MAX_FILES) {
      throw new ApiError('too_many_files', 413, `the form has more than ${MAX_FORM_FILES} file parts (the limit is ${MAX_FORM_FILES})`);
    }
    if (f.httpCode === 413) throw bodyTooLarge(limitBytes);
    if (f.code === FORMIDABLE_ABORTED) throw new ApiError('request_aborted', 400, 'the client aborted the upload');
    throw new StegoError('invalid_request', `malformed multipart body: ${err.message}`);
  };
}

/**
 * Parses a multipart/form-data body into memory (see the header for the bounds). Any other content
 * type is refused with 415 before the body is read.
 */
export function multipartBody(limitBytes: number, scanLimits?: UploadScanLimits): Middleware {
  const onError = translateParseError(limitBytes);
  return async function parseMultipart(ctx, next) {
    if (!ctx.is('multipart/form-data')) {
      const got = ctx.get('Content-Type') || 'none';
      throw new ApiError('unsupported_media_type', 415, `expected a multipart/form-data body, got content type ${got}`);
    }
    const arena = new UploadArena(Math.min(ctx.request.length ?? 0, limitBytes));
    ctx.state[ARENA_STATE_KEY] = arena;
    const invalidUtf8 = new Set<string>();
    ctx.state[INVALID_UTF8_STATE_KEY] = invalidUtf8;
    const fileParts: string[] = [];
    // the image part is scanned while it arrives (signature, IHDR and pixel limit, chunk headers), so a
    // decompression bomb is refused at byte 33 and a PNG announcing 40 MB of text at that chunk's header,
    // not after the body was received
    const scannerFor = (name: string): PngUploadScanner | undefined => (name === 'file' && scanLimits ? new PngUploadScanner(scanLimits) : undefined);
    // formidable's stream handler sees only the part, so each request gets its own parser instance.
    const parse = koaBody({
      multipart: true,
      json: false,
      urlencoded: false,
      text: false,
      onError,
      formidable: {
        maxFileSize: limitBytes,
        maxTotalFileSize: limitBytes,
        maxFieldsSize: limitBytes,
        maxFields: MAX_FORM_FIELDS,
        maxFiles: MAX_FORM_FILES,
        allowEmptyFiles: true,
        minFileSize: 0,
        fileWriteStreamHandler: (file) => arena.stream(file ?? {}, scannerFor(fileParts.shift() ?? '')),
        // Nothing touches the disk, so formidable need not derive a random file name (a SHA-3 per part).
        filename: () => 'in-memory',
        onPart: classifyPart(invalidUtf8, fileParts),
      },
    });
    await parse(ctx, next);
  };
}

function single<T>(value: T | T[] | undefined, name: string): T | undefined {
  if (!Array.isArray(value)) return value;
  if (value.length > 1) throw new StegoError('invalid_request', `field '${name}' was sent ${value.length} times; send it once`);
  return value[0];
}

function bytesOf(ctx: Context, file: File): Buffer {
  const bytes = (ctx.state[ARENA_STATE_KEY] as UploadArena | undefined)?.contentOf(file);
  if (!bytes) throw new Error(`upload '${file.originalFilename ?? ''}' was not captured in memory`);
  return bytes;
}

function readFilePart(ctx: Context, name: FilePart): File | undefined {
  const file = single(ctx.request.files?.[name], name);
  const asText = (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  if (!file && asText !== undefined) {
    throw new StegoError('invalid_request', `'${name}' must be a file part (multipart with a filename), not a text field`);
  }
  return file;
}

function readTextField(ctx: Context, name: TextField): string | undefined {
  if (ctx.request.files?.[name] !== undefined) {
    const hint = name === 'message' ? "; send files as 'payload'" : '';
    throw new StegoError('invalid_request', `'${name}' must be a text field, not a file part${hint}`);
  }
  if ((ctx.state[INVALID_UTF8_STATE_KEY] as Set<string> | undefined)?.has(name)) {
    throw new StegoError('invalid_utf8', `'${name}' is not valid UTF-8; send text as UTF-8, or exact bytes as a 'payload' file`);
  }
  const value = single((ctx.request.body as Record<string, string | string[]> | undefined)?.[name], name);
  return typeof value === 'string' ? value : undefined;
}

/**
 * Reads and validates the fields of a parsed multipart body (multipartBody must run first). The
 * returned buffers are views of the request's upload arena: handing them to the worker pool moves the
 * whole arena to the worker, after which every view of it is empty.
 */
export function readStegoForm(ctx: Context): StegoForm {
  const form: StegoForm = {};
  const file = readFilePart(ctx, 'file');
  if (file) form.file = bytesOf(ctx, file);
  const payload = readFilePart(ctx, 'payload');
  if (payload) form.payload = { filename: safeFilename(payload.originalFilename), data: bytesOf(ctx, payload) };
  const message = readTextField(ctx, 'message');
  if (message !== undefined) form.message = message;
  const passphrase = readTextField(ctx, 'passphrase');
  if (passphrase) form.passphrase = passphrase;
  return form;
}

/** The PNG of the form, or an invalid_request naming the missing field. */
export function requireFile(form: StegoForm): Buffer {
  if (!form.file) throw new StegoError('invalid_request', "missing 'file': attach a PNG image as the multipart part 'file'");
  return form.file;
}

/** The one payload of the form: exactly one of `message` and `payload` must be present. */
export function payloadOf(form: StegoForm): Payload {
  if (form.message !== undefined && form.payload) {
    throw new StegoError('invalid_request', "send either 'message' (text) or 'payload' (a file), not both");
  }
  if (form.payload) return { kind: 'file', filename: form.payload.filename, data: form.payload.data };
  if (form.message !== undefined) return { kind: 'text', text: form.message };
  throw new StegoError('invalid_request', "missing payload: send a 'message' text field or a 'payload' file part");
}
