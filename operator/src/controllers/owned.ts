// Applying owned objects without needless writes: each desired object carries a hash of itself in an
// annotation; when the watcher's cached copy already carries that hash the apply is skipped, so a steady
// state sends the API server no writes at all. A change of the desired object (or of the cached one
// losing the annotation) applies it with server-side apply.
import { createHash } from 'node:crypto';
import { ANNOTATION_SPEC_HASH } from '../api/names.js';
import { objectPath, type KObject, type KubeClient } from '../k8s/client.js';
import { objectKey, type Watcher } from '../k8s/watcher.js';

export type Caches = Partial<Record<string, Watcher<KObject>>>;

export function desiredHash(obj: KObject): string {
  return createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 20);
}

export function withHash<T extends KObject>(obj: T): T {
  const hash = desiredHash(obj);
  const meta = obj.metadata ?? {};
  return { ...obj, metadata: { ...meta, annotations: { ...(meta.annotations ?? {}), [ANNOTATION_SPEC_HASH]: hash } } };
}

export class NotOwnedError extends Error {
  override name = 'NotOwnedError';
}

export class OwnedObjects {
  constructor(
    private readonly client: KubeClient,
    private readonly caches: Caches,
  ) {}

  cached<T extends KObject>(kind: string, namespace: string, name: string): T | undefined {
    return this.caches[kind]?.cache.get(`${namespace}/${name}`) as T | undefined;
  }

  available(kind: string): boolean {
    const w = this.caches[kind];
    return w === undefined || w.available;
  }

  /** Applies `obj` unless the cached copy was applied from the same desired object. Returns true on a write. */
  async apply<T extends KObject>(obj: T): Promise<boolean> {
    const desired = withHash(obj);
    const kind = obj.kind!;
    const current = this.cached<T>(kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (current?.metadata?.annotations?.[ANNOTATION_SPEC_HASH] === desired.metadata!.annotations![ANNOTATION_SPEC_HASH]) return false;
    const owner = obj.metadata?.ownerReferences?.[0]?.uid;
    if (current && owner && !current.metadata?.ownerReferences?.some((r) => r.uid === owner)) {
      throw new NotOwnedError(`${kind} ${obj.metadata!.namespace}/${obj.metadata!.name} exists and is not owned by this StegoCluster: rename or delete it`);
    }
    const applied = await this.client.apply(desired);
    // remember the answer at once: a pass before the watch event arrives must not apply again
    const w = this.caches[kind];
    if (w && applied?.metadata) w.cache.set(objectKey(applied), applied);
    return true;
  }

  /** Deletes an owned object that should not exist (a front-door mode switched off, a PDB below 3). */
  async remove(kind: string, apiVersion: string, namespace: string, name: string): Promise<boolean> {
    const w = this.caches[kind];
    const current = w ? w.cache.get(`${namespace}/${name}`) : await this.client.find(objectPath({ apiVersion, kind, metadata: { name, namespace } }));
    if (!current) return false;
    await this.client.delete(objectPath({ apiVersion, kind, metadata: { name, namespace } }));
    w?.cache.delete(`${namespace}/${name}`);
    return true;
  }
}
