// `npm run bench:lb`: what nginx costs. Requests/s and p99 latency for /healthz and a small embed, sent
// straight to one node versus through the nginx load balancer of `npm start`, in the same run.
import autocannon from 'autocannon';
import { PNG } from 'pngjs';
import { findNginx } from '../src/lb/nginx-process.js';
import { LocalCluster } from '../test/lb/local-cluster-harness.js';

interface Row {
  target: string;
  path: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const DURATION_S = Number(process.env['BENCH_SECONDS'] ?? 8);

function smallPng(): Buffer {
  const w = 64;
  const h = 64;
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h * 4; i++) png.data[i] = (i * 37) & 0xff;
  for (let i = 3; i < w * h * 4; i += 4) png.data[i] = 255;
  return PNG.sync.write(png, { colorType: 2 } as never);
}

function multipartBody(png: Buffer): { body: Buffer; contentType: string } {
  const boundary = '----stegobench' + Date.now().toString(16);
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello from bench:lb\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, png, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

async function run(target: string, url: string, path: string, connections: number, post?: { body: Buffer; contentType: string }): Promise<Row> {
  const result = await autocannon({
    url: url + path,
    connections,
    duration: DURATION_S,
    method: post ? 'POST' : 'GET',
    ...(post ? { body: post.body, headers: { 'content-type': post.contentType } } : {}),
  });
  return {
    target,
    path,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

async function main(): Promise<void> {
  if (!findNginx()) throw new Error('nginx is not installed (apt-get install nginx)');
  const cluster = new LocalCluster(3);
  const rows: Row[] = [];
  try {
    await cluster.start();
    const direct = cluster.nodeUrl('n1');
    const embed = multipartBody(smallPng());
    for (const [path, post, conns] of [
      ['/healthz', undefined, 32],
      ['/api/embed', embed, 8],
    ] as const) {
      rows.push(await run('direct n1', direct, path, conns, post));
      rows.push(await run('nginx (3 nodes)', cluster.lb, path, conns, post));
    }
  } finally {
    await cluster.destroy();
  }
  console.log(`\nbench:lb — ${new Date().toISOString()} — ${DURATION_S}s per cell, autocannon\n`);
  console.log('| target | path | req/s | p50 ms | p99 ms | errors | non-2xx | req/s vs direct |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const base = rows.find((x) => x.path === r.path && x.target.startsWith('direct'))!;
    console.log(
      `| ${r.target} | ${r.path} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.non2xx} | ${(r.rps / base.rps).toFixed(2)}× |`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
