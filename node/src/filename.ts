// Reducing a client-supplied file name to something safe to store, echo in Content-Disposition, or
// write to disk: the last path segment, no control characters, never empty, "." or "..".
export const DEFAULT_PAYLOAD_NAME = 'payload.bin';

export function safeFilename(name: string | null | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return clean === '' || clean === '.' || clean === '..' ? DEFAULT_PAYLOAD_NAME : clean;
}
