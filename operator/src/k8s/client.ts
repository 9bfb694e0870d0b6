// The one place that talks to the API server (besides the watch stream, watcher.ts): plain JSON over
// HTTPS with the credentials of a client-node KubeConfig. Objects travel in their wire form (client-node's
// typed models rename fields such as NetworkPolicy `from`), server-side apply uses our own field manager.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../api/names.js';

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    // strings on the wire; Date in client-node's typed models, which the builders use
    deletionTimestamp?: string | Date;
    creationTimestamp?: string | Date;
  };
}

export interface KList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An API server answer other than 2xx, with the Status message the server gave. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'ApiError';
  }

  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  get gone(): boolean {
    return this.status === 410;
  }
}

/** Plural resource names of the kinds the operator touches (no discovery round trip for known kinds). */
const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  Service: 'services',
  Pod: 'pods',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Event: 'events',
  StatefulSet: 'statefulsets',
  Deployment: 'deployments',
  PodDisruptionBudget: 'poddisruptionbudgets',
  NetworkPolicy: 'networkpolicies',
  Ingress: 'ingresses',
  HTTPRoute: 'httproutes',
  ServiceMonitor: 'servicemonitors',
  Lease: 'leases',
  StegoCluster: 'stegoclusters',
  CustomResourceDefinition: 'customresourcedefinitions',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  PrometheusRule: 'prometheusrules',
};

export function pluralOf(kind: string): string {
  const p = PLURALS[kind];
  if (!p) throw new Error(`unknown kind ${kind}`);
  return p;
}

/** /api/v1/namespaces/ns/pods or /apis/apps/v1/namespaces/ns/statefulsets[/name][/sub]. */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string, subresource?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const n = name ? `/${encodeURIComponent(name)}` : '';
  return `${base}${ns}/${pluralOf(kind)}${n}${name && subresource ? `/${subresource}` : ''}`;
}

export function objectPath(obj: KObject, subresource?: string): string {
  if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) throw new Error('object needs apiVersion, kind and metadata.name');
  return resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, subresource);
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

/** Counts every request by verb, so tests (and metrics) can prove a steady state writes nothing. */
export type RequestObserver = (method: string, path: string, status: number) => void;

export class KubeClient {
  private readonly observers: RequestObserver[] = [];
  // client-node builds a new agent per call; keep one set of options, refreshed so rotated
  // service-account tokens are picked up.
  private auth: { at: number; options: https.RequestOptions } | null = null;

  constructor(readonly kc: KubeConfig) {}

  onRequest(o: RequestObserver): void {
    this.observers.push(o);
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const base = await this.authOptions();
    const options: https.RequestOptions = { ...base, method, headers: { ...(base.headers as Record<string, string>), Accept: 'application/json' } };
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (payload) Object.assign(options.headers!, { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': payload.length });
    const { status, text } = await send(url, options, payload, opts.timeoutMs ?? 30_000);
    for (const o of this.observers) o(method, url.pathname, status);
    if (status < 200 || status >= 300) throw toApiError(status, text, method, url.pathname);
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      return text as T; // /readyz, /healthz and friends answer plain text
    }
  }

  private async authOptions(): Promise<https.RequestOptions> {
    if (this.auth && Date.now() - this.auth.at < 60_000) return this.auth.options;
    const options: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(options);
    this.auth = { at: Date.now(), options };
    return options;
  }

  get<T extends KObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET that answers null for 404. */
  async find<T extends KObject>(path: string): Promise<T | null> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof ApiError && err.notFound) return null;
      throw err;
    }
  }

  list<T extends KObject>(path: string, query: RequestOptions['query'] = {}): Promise<KList<T>> {
    return this.request<KList<T>>('GET', path, { query });
  }

  create<T extends KObject>(obj: T): Promise<T> {
    const path = resourcePath(obj.apiVersion!, obj.kind!, obj.metadata?.namespace);
    return this.request<T>('POST', path, { body: obj, query: { fieldManager: FIELD_MANAGER } });
  }

  /**
   * Server-side apply with our field manager; force takes over fields another manager set. `dryRun` with
   * strict field validation lets tests check a manifest against the server's schema without storing it.
   */
  apply<T extends KObject>(obj: T, subresource?: string, opts: { dryRun?: boolean } = {}): Promise<T> {
    return this.request<T>('PATCH', objectPath(obj, subresource), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true, ...(opts.dryRun ? { dryRun: 'All', fieldValidation: 'Strict' } : {}) },
    });
  }

  mergePatch<T extends KObject>(path: string, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, contentType: 'application/merge-patch+json', query: { fieldManager: FIELD_MANAGER } });
  }

  replace<T extends KObject>(obj: T): Promise<T> {
    return this.request<T>('PUT', objectPath(obj), { body: obj, query: { fieldManager: FIELD_MANAGER } });
  }

  /** DELETE that treats 404 as done. */
  async delete(path: string, preconditionUid?: string): Promise<void> {
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', ...(preconditionUid ? { preconditions: { uid: preconditionUid } } : {}) };
    try {
      await this.request('DELETE', path, { body });
    } catch (err) {
      if (!(err instanceof ApiError && err.notFound)) throw err;
    }
  }
}

function toApiError(status: number, text: string, method: string, path: string): ApiError {
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    return new ApiError(status, s.reason ?? 'Unknown', s.message ?? text, method, path);
  } catch {
    return new ApiError(status, 'Unknown', text.slice(0, 500), method, path);
  }
}

function send(url: URL, options: https.RequestOptions, payload: Buffer | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
  const plain = url.protocol === 'http:';
  // the kubeconfig's agent speaks TLS; a plain-HTTP server (client-node allows it with skipTLSVerify) gets the default one
  const opts = plain ? { ...options, agent: undefined } : options;
  return new Promise((resolve, reject) => {
    const req = (plain ? http : https).request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${options.method} ${url.pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
