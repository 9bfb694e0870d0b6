// Helpers for tests that exercise the HTTP shell through a real listening server: a server on a free
// port with its own pool and registry. Photo-like test images are stego/png/synthetic.ts's photoPng.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { silentLogger, type Logger } from '../log.js';
import { createRegistry } from '../metrics/registry.js';
import { StegoPool, type StegoPoolOptions } from '../workers/stego-pool.js';
import { createApp } from './app.js';
import { applyServerTimeouts, httpConfig, type HttpConfig } from './http-config.js';
import type { TokenRegistry } from '../auth/tokens.js';
import type { Router } from '@koa/router';

export interface TestServer {
  url: string;
  pool: StegoPool;
  server: Server;
  close(): Promise<void>;
}

export interface TestServerOptions {
  pool?: StegoPoolOptions;
  config?: Partial<HttpConfig>;
  logger?: Logger;
  extraRouters?: Router[];
  tokens?: TokenRegistry;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const registry = createRegistry({ defaultMetrics: false });
  const pool = new StegoPool({ size: 1, maxQueue: 4, ...opts.pool, registry });
  const config = httpConfig(opts.config);
  const app = createApp({
    pool,
    config,
    tokens: opts.tokens,
    logger: opts.logger ?? silentLogger(),
    registry,
    extraRouters: opts.extraRouters,
  });
  const server = app.listen(0, '127.0.0.1');
  applyServerTimeouts(server, config);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pool,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.close();
    },
  };
}
