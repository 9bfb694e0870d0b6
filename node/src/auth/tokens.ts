// API tokens: who may read, write and delete stored objects, with a stored-bytes quota and a request
// rate each. Loaded once at start from STEGO_API_TOKENS_FILE (a mounted Kubernetes Secret, or the file
// `npm start` writes) or STEGO_API_TOKENS; the admin API keeps its own token (STEGO_ADMIN_TOKEN).
//
// Format (docs/http-api.md, "Access control"), either JSON:
//   {"tokens":[{"id":"alice","token":"<secret>","scopes":["read","write","delete"],
//               "quota_bytes":1073741824,"rate_per_second":20}]}      (a bare array works too)
// or one token per line (also `;`-separated), `#` comments:
//   alice <secret> read,write,delete quota=1073741824 rate=20
// Only SHA-256 digests of the secrets are kept in memory; a presented token is hashed and compared with
// every known digest by crypto.timingSafeEqual, so neither the comparison nor the lookup leaks a prefix.
import { hash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const SCOPES = ['read', 'write', 'delete'] as const;
export type Scope = (typeof SCOPES)[number];

export const DEFAULT_QUOTA_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_RATE_PER_SECOND = 20;
export const MIN_TOKEN_LENGTH = 16;

export interface ApiToken {
  id: string;
  scopes: ReadonlySet<Scope>;
  /** Most bytes of objects this token's writes may keep stored (0: no limit). */
  quotaBytes: number;
  /** Sustained requests per second on one node; bursts of twice that are allowed. */
  ratePerSecond: number;
}

export class TokenConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}

interface RawToken {
  id?: unknown;
  token?: unknown;
  scopes?: unknown;
  quota_bytes?: unknown;
  rate_per_second?: unknown;
}

const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** SHA-256 of the UTF-8 string in one call (no Hash object: it runs once per authenticated request). */
function digest(s: string): Buffer {
  return hash('sha256', s, 'buffer');
}

function nonNegative(v: unknown, what: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new TokenConfigError(`${what} must be a non-negative number`);
  return n;
}

function toEntry(raw: RawToken, where: string): { token: ApiToken; secret: string } {
  const id = raw.id;
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new TokenConfigError(`${where}: id must match ${ID_RE.source}`);
  const secret = raw.token;
  if (typeof secret !== 'string' || secret.length < MIN_TOKEN_LENGTH || /\s/.test(secret)) {
    throw new TokenConfigError(`${where} (${id}): token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  const scopesRaw = typeof raw.scopes === 'string' ? raw.scopes.split(',') : raw.scopes;
  if (!Array.isArray(scopesRaw)) throw new TokenConfigError(`${where} (${id}): scopes must list some of ${SCOPES.join(', ')}`);
  const scopes = new Set<Scope>();
  for (const s of scopesRaw) {
    const scope = String(s).trim();
    if (scope === '') continue;
    if (!(SCOPES as readonly string[]).includes(scope)) throw new TokenConfigError(`${where} (${id}): unknown scope ${JSON.stringify(scope)} (${SCOPES.join(', ')})`);
    scopes.add(scope as Scope);
  }
  return {
    secret,
    token: {
      id,
      scopes,
      quotaBytes: nonNegative(raw.quota_bytes, `${where} (${id}): quota_bytes`, DEFAULT_QUOTA_BYTES),
      ratePerSecond: nonNegative(raw.rate_per_second, `${where} (${id}): rate_per_second`, DEFAULT_RATE_PER_SECOND),
    },
  };
}

function parseLine(line: string, where: string): RawToken {
  const [id, token, scopes, ...opts] = line.split(/\s+/);
  const raw: RawToken = { id, token, scopes: scopes ?? '' };
  for (const opt of opts) {
    const [k, v] = opt.split('=', 2);
    if (k === 'quota') raw.quota_bytes = v;
    else if (k === 'rate') raw.rate_per_second = v;
    else throw new TokenConfigError(`${where}: unknown option ${JSON.stringify(opt)} (quota=BYTES, rate=PER_SECOND)`);
  }
  return raw;
}

/** Parses the JSON or line format; throws TokenConfigError naming the first bad entry. */
export function parseTokens(text: string, source = 'tokens'): TokenRegistry {
  const trimmed = text.trim();
  let raws: { raw: RawToken; where: string }[];
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch (e) {
      throw new TokenConfigError(`${source}: invalid JSON: ${(e as Error).message}`);
    }
    const list = Array.isArray(doc) ? doc : (doc as { tokens?: unknown }).tokens;
    if (!Array.isArray(list)) throw new TokenConfigError(`${source}: expected {"tokens": [...]} or an array`);
    raws = list.map((raw, i) => ({ raw: (raw ?? {}) as RawToken, where: `${source}[${i}]` }));
  } else {
    raws = trimmed
      .split(/[\n;]/)
      .map((l, i) => ({ line: l.replace(/#.*$/, '').trim(), where: `${source} entry ${i + 1}` }))
      .filter((l) => l.line !== '')
      .map((l) => ({ raw: parseLine(l.line, l.where), where: l.where }));
  }
  const entries = raws.map(({ raw, where }) => toEntry(raw, where));
  const ids = new Set<string>();
  for (const e of entries) {
    if (ids.has(e.token.id)) throw new TokenConfigError(`${source}: token id ${e.token.id} appears twice`);
    ids.add(e.token.id);
  }
  return new TokenRegistry(entries);
}

/** STEGO_API_TOKENS_FILE wins over STEGO_API_TOKENS; neither set → no tokens (object routes answer 401). */
export function loadTokens(env: Record<string, string | undefined>): TokenRegistry {
  const file = env['STEGO_API_TOKENS_FILE']?.trim();
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new TokenConfigError(`STEGO_API_TOKENS_FILE=${file}: ${(e as Error).message}`);
    }
    return parseTokens(text, file);
  }
  const inline = env['STEGO_API_TOKENS']?.trim();
  return inline ? parseTokens(inline, 'STEGO_API_TOKENS') : new TokenRegistry([]);
}

export class TokenRegistry {
  private readonly entries: { token: ApiToken; digest: Buffer }[];

  constructor(entries: { token: ApiToken; secret: string }[]) {
    this.entries = entries.map((e) => ({ token: e.token, digest: digest(e.secret) }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The token whose secret is `presented`, comparing against every entry in constant time. */
  authenticate(presented: string): ApiToken | undefined {
    const d = digest(presented);
    let found: ApiToken | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e.token;
    return found;
  }
}
