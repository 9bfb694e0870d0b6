// The StegoCluster front door (the operator-managed nginx gateway) as a client sees it: embed, extract,
// store and read objects, and a steady writer that records every request's outcome.

import { randomUUID } from 'node:crypto';
import { encodePng } from '../../node/src/stego/png/encode.js';
import { photoLikeRaster } from '../../node/src/stego/png/synthetic.js';
import { kubectlJson, type KubeList } from './kube.js';
import { isGatewayService } from './contract.js';

interface ServicePort {
  name?: string;
  port: number;
  nodePort?: number;
}

/**
 * The front door's base URL: STEGO_E2E_FRONT_DOOR when set (kind maps the gateway's NodePort to the host),
 * otherwise the gateway Service's NodePort on the first node's InternalIP, otherwise its ClusterIP (reachable
 * from the node itself, which is where the local Kubernetes runs the suite).
 */
export async function frontDoorUrl(namespace: string, clusterName: string): Promise<string> {
  if (process.env.STEGO_E2E_FRONT_DOOR) return process.env.STEGO_E2E_FRONT_DOOR.replace(/\/$/, '');
  const services = await kubectlJson<KubeList>(['-n', namespace, 'get', 'services']);
  const gateway = services.items.find((s) => isGatewayService(s, clusterName));
  if (!gateway) throw new Error(`no gateway Service for ${clusterName} in ${namespace}: ${services.items.map((s) => s.metadata.name).join(', ')}`);
  const spec = gateway.spec as { clusterIP?: string; ports?: ServicePort[] };
  const port = spec.ports?.find((p) => p.name === 'http') ?? spec.ports?.[0];
  if (!port) throw new Error(`gateway Service ${gateway.metadata.name} has no ports`);
  if (port.nodePort) {
    const nodes = await kubectlJson<KubeList>(['get', 'nodes']);
    const addresses = (nodes.items[0]?.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
    const ip = addresses.find((a) => a.type === 'InternalIP')?.address;
    if (ip) return `http://${ip}:${port.nodePort}`;
  }
  return `http://${spec.clusterIP}:${port.port}`;
}

/** A small photo-like PNG, different for every seed. */
export function samplePng(seed: number, width = 160, height = 120): Promise<Buffer> {
  return encodePng(photoLikeRaster({ width, height, channels: 3, seed }));
}

export interface Answer {
  status: number;
  body: Buffer;
  headers: Headers;
}

async function answer(res: Response): Promise<Answer> {
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

export class FrontDoor {
  constructor(readonly baseUrl: string) {}

  async get(path: string, timeoutMs = 10_000): Promise<Answer> {
    return answer(await fetch(this.baseUrl + path, { signal: AbortSignal.timeout(timeoutMs) }));
  }

  async embed(cover: Buffer, message: string): Promise<Answer> {
    const form = new FormData();
    form.set('file', new Blob([cover], { type: 'image/png' }), 'cover.png');
    form.set('message', message);
    return answer(await fetch(`${this.baseUrl}/api/embed`, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) }));
  }

  async extract(png: Buffer): Promise<Answer> {
    const form = new FormData();
    form.set('file', new Blob([png], { type: 'image/png' }), 'stego.png');
    return answer(await fetch(`${this.baseUrl}/api/extract`, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) }));
  }

  /** Stores a finished PNG as an object; the idempotency key makes a retried request safe. */
  async putObject(png: Buffer, key: string = randomUUID()): Promise<Answer> {
    return answer(
      await fetch(`${this.baseUrl}/api/objects`, {
        method: 'POST',
        body: png,
        headers: { 'content-type': 'image/png', 'idempotency-key': key, ...authHeader() },
        signal: AbortSignal.timeout(30_000),
      }),
    );
  }

  async getObject(id: string): Promise<Answer> {
    return answer(await fetch(`${this.baseUrl}/api/objects/${encodeURIComponent(id)}`, { headers: authHeader(), signal: AbortSignal.timeout(30_000) }));
  }
}

/** The bearer token for the object API when the deployment sets one (STEGO_E2E_TOKEN). */
function authHeader(): Record<string, string> {
  const token = process.env.STEGO_E2E_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

export interface WriteOutcome {
  key: string;
  status: number;
  id?: string;
  sha256?: string;
  error?: string;
  /** 503 answers honoured by waiting Retry-After and resending with the same idempotency key. */
  retries: number;
}

/**
 * Writes objects through the front door one after another until stopped. A 503 with Retry-After is the
 * API's "busy, try again" and is retried (same idempotency key, at most 3 times); anything else that is not
 * 201 — another status, a reset connection, a timeout — is a failed request.
 */
export class SteadyWriter {
  readonly outcomes: WriteOutcome[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly door: FrontDoor, private readonly images: Buffer[]) {}

  start(): void {
    this.loop = (async () => {
      let n = 0;
      while (!this.stopped) {
        this.outcomes.push(await this.writeOne(this.images[n++ % this.images.length]!));
      }
    })();
  }

  async stop(): Promise<WriteOutcome[]> {
    this.stopped = true;
    await this.loop;
    return this.outcomes;
  }

  failures(): WriteOutcome[] {
    return this.outcomes.filter((o) => o.status !== 201);
  }

  private async writeOne(png: Buffer): Promise<WriteOutcome> {
    const key = randomUUID();
    let retries = 0;
    for (;;) {
      try {
        const a = await this.door.putObject(png, key);
        const retryAfter = Number(a.headers.get('retry-after'));
        if (a.status === 503 && retryAfter > 0 && retries < 3) {
          retries++;
          await new Promise((r) => setTimeout(r, retryAfter * 1000));
          continue;
        }
        if (a.status !== 201) return { key, status: a.status, error: a.body.toString('utf8').slice(0, 300), retries };
        const body = JSON.parse(a.body.toString('utf8')) as { id: string; sha256: string };
        return { key, status: 201, id: body.id, sha256: body.sha256, retries };
      } catch (err) {
        return { key, status: 0, error: describeError(err), retries };
      }
    }
  }
}

/** An error with its cause chain: undici's "fetch failed" says what failed only in `cause` (code, message). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { name?: string; code?: string; message?: string };
    parts.push([x.name, x.code, x.message ?? String(e)].filter(Boolean).join(' '));
  }
  return parts.join(' <- ');
}
