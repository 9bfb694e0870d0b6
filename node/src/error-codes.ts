// A layer's error codes as data, from the one record that lists them: every code (for tables that must
// cover them all, such as http/errors.ts) and a type guard (for codes that crossed a thread or a link as
// strings). The record is typed `Record<Code, true>`, so the compiler refuses a list that misses a code.
export interface ErrorCodes<C extends string> {
  readonly all: readonly C[];
  has(code: unknown): code is C;
}

export function errorCodes<C extends string>(record: Record<C, true>): ErrorCodes<C> {
  const all = Object.keys(record) as C[];
  return { all, has: (code: unknown): code is C => typeof code === 'string' && Object.hasOwn(record, code) };
}
