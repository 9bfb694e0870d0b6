// Helpers for tests that exercise the HTTP shell through a real listening server: photo-like test
// images (gradients plus noise, so they compress and carry data like real photos) and a server on a
// free port with its own pool and registry.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { encodePng } from '../stego/png/index.js';
import type { Raster } from '../stego/raster.js';
import { silentLogger, type Logger } from '../log.js';
import { createRegistry } from '../metrics/registry.js';
import { StegoPool, type StegoPoolOptions } from '../workers/stego-pool.js';
import { createApp } from './app.js';
import { httpConfig, type HttpConfig } from './http-config.js';
import type { Router } from '@koa/router';

/** Deterministic xorshift so test images are the same on every run. */
function noise(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

export interface PhotoOptions {
  channels?: 3 | 4;
  seed?: number;
  /** Amplitude of the noise added to the gradients (0-255). */
  noise?: number;
}

export function photoRaster(width: number, height: number, opts: PhotoOptions = {}): Raster {
  const channels = opts.channels ?? 3;
  const rand = noise(opts.seed ?? 1);
  const amp = opts.noise ?? 12;
  const data = new Uint8Array(width * height * channels);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const base = [(x * 255) / width, (y * 255) / height, ((x + y) * 127) / (width + height)];
      for (let c = 0; c < 3; c++) data[i++] = Math.max(0, Math.min(255, Math.round(base[c]! + (rand() - 0.5) * amp)));
      if (channels === 4) data[i++] = 255;
    }
  }
  const colorType = channels === 4 ? 6 : 2;
  return {
    width,
    height,
    colorType,
    bitDepth: 8,
    channels,
    hasAlpha: channels === 4,
    data,
    chunks: [],
    source: { width, height, bitDepth: 8, colorType, interlace: 0 },
  };
}

export function photoPng(width: number, height: number, opts: PhotoOptions = {}): Promise<Buffer> {
  return encodePng(photoRaster(width, height, opts));
}

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
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const registry = createRegistry({ defaultMetrics: false });
  const pool = new StegoPool({ size: 1, maxQueue: 4, ...opts.pool, registry });
  const app = createApp({
    pool,
    config: httpConfig(opts.config),
    logger: opts.logger ?? silentLogger(),
    registry,
    extraRouters: opts.extraRouters,
  });
  const server = app.listen(0, '127.0.0.1');
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
