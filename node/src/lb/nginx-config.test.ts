import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderNginxConf, renderNginxSite, STREAM_BODY_FROM_BYTES, STREAM_LOCATION, writeUpstreamLines } from './nginx-config.js';
import { findNginx } from './nginx-process.js';

const nodes = [
  { id: 'n1', address: '127.0.0.1:8081' },
  { id: 'n2', address: '127.0.0.1:8082' },
  { id: 'n3', address: '127.0.0.1:8083' },
];

describe('nginx config renderer', () => {
  it('carries the design guide settings', () => {
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2' });
    expect(site).to.include('max_fails=2 fail_timeout=5s');
    expect(site).to.match(/proxy_next_upstream error timeout http_500 http_502 http_503/);
    expect(site).to.include('proxy_next_upstream_tries 3;');
    // the nodes' default STEGO_BODY_LIMIT_BYTES, in bytes: both refuse at the same size
    expect(site).to.include(`client_max_body_size ${50 * 1024 * 1024};`);
    expect(site).to.include('proxy_read_timeout 60s;');
    expect(site).to.include('proxy_send_timeout 60s;');
    expect(site).to.include('keepalive 32;');
    expect(site).to.match(/location = \/nginx_status \{\s+stub_status;/);
    // a client's own Idempotency-Key is kept; otherwise nginx's per-request id, identical across its retries
    expect(site).to.match(/map \$http_idempotency_key \$stego_idempotency_key \{\s+"" \$request_id;/);
    expect(site).to.include('proxy_set_header Idempotency-Key $stego_idempotency_key;');
  });

  it('balances reads over every node and sends writes to the leader first, others as backup', () => {
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2' });
    const all = site.slice(site.indexOf('upstream stego_all'), site.indexOf('upstream stego_write'));
    for (const n of nodes) expect(all).to.include(`server ${n.address} max_fails=2 fail_timeout=5s; # ${n.id}`);
    const lines = writeUpstreamLines(nodes, 'n2');
    expect(lines[0]).to.include('127.0.0.1:8082').and.not.include('backup');
    expect(lines.slice(1).every((l) => l.includes(' backup;'))).to.equal(true);
  });

  it('with no known leader, writes are balanced over all nodes', () => {
    expect(writeUpstreamLines(nodes, null).some((l) => l.includes('backup'))).to.equal(false);
    expect(writeUpstreamLines(nodes, 'gone').some((l) => l.includes('backup'))).to.equal(false);
  });

  it('with a write primary (a Service that follows the leader), every node is a write backup', () => {
    const leaderSvc = { id: 'leader', address: 'demo-leader.ns.svc.cluster.local:8080' };
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', writePrimary: leaderSvc });
    const write = site.slice(site.indexOf('upstream stego_write'), site.indexOf('map $http_idempotency_key'));
    expect(write).to.include(`server ${leaderSvc.address} max_fails=2 fail_timeout=5s; # leader`);
    // a follower's 503 during an election must not mark it down: members behind the primary keep max_fails=0,
    // and every one of them may be tried after the primary
    for (const n of nodes) expect(write).to.include(`server ${n.address} max_fails=0 fail_timeout=5s backup; # ${n.id}`);
    expect(site).to.include(`proxy_next_upstream_tries ${nodes.length + 1};`);
    const all = site.slice(site.indexOf('upstream stego_all'), site.indexOf('upstream stego_write'));
    expect(all).to.not.include(leaderSvc.address);
    // the file does not depend on who leads: an election needs no new config
    expect(renderNginxSite({ listen: 8080, nodes, leaderId: 'n3', writePrimary: leaderSvc })).to.equal(site);
    expect(() => renderNginxSite({ listen: 1, nodes, leaderId: null, writePrimary: { id: 'x', address: 'a b:1' } })).to.throw(/invalid node address/);
  });

  it('answers its own 404/413/502/503/504 in the API JSON shape, naming the real body limit', () => {
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', maxBodyBytes: 1234567 });
    expect(site).to.include('client_max_body_size 1234567;');
    for (const status of [404, 413, 502, 503, 504]) {
      expect(site).to.include(`error_page ${status} = @stego_error_${status};`);
      const block = site.slice(site.indexOf(`location @stego_error_${status} {`));
      const body = /return \d+ '([^']+)';/.exec(block)![1]!;
      const json = JSON.parse(body) as { error: { code: string; message: string } };
      expect(Object.keys(json.error)).to.deep.equal(['code', 'message']);
      if (status === 413) {
        expect(json.error).to.deep.include({ code: 'body_too_large' });
        expect(json.error.message).to.include('1234567');
      }
    }
  });

  it('streams large bodies outside the write routes, so a node refusal stops the upload; writes and small bodies stay buffered', () => {
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2' });
    const block = (start: string): string => {
      const from = site.indexOf(start);
      expect(from, start).to.be.at.least(0);
      return site.slice(from, site.indexOf('\n    }', from));
    };
    // case-insensitive like the nodes' router: /API/Objects is a write too
    const objects = block('    location ~* ^/api/objects {');
    expect(objects).to.include('proxy_pass http://$stego_object_upstream;');
    expect(objects).to.include('proxy_request_buffering on;');
    expect(objects).to.not.include('rewrite');
    const admin = block('    location ~* ^/admin/ {');
    expect(admin).to.include('proxy_pass http://stego_write;');
    expect(admin).to.include('proxy_request_buffering on;');
    // /api/embed, /api/extract, /api/capacity and the reads: large or chunked bodies go to the streamed location
    const rest = block('    location / {');
    expect(rest).to.include(`if ($stego_stream_body) { rewrite ^ ${STREAM_LOCATION} last; }`);
    expect(rest).to.include('proxy_request_buffering on;');
    const streamed = block(`    location = ${STREAM_LOCATION} {`);
    expect(streamed).to.include('internal;');
    expect(streamed).to.include('proxy_pass http://stego_all$request_uri;');
    expect(streamed).to.include('proxy_request_buffering off;');
    expect(site.match(/proxy_request_buffering off/g)).to.have.length(1);
    // which bodies stream: the map's regex, checked on "Content-Length|Transfer-Encoding" keys
    const map = block('  map "$http_content_length|$http_transfer_encoding" $stego_stream_body {');
    expect(map).to.include('default 1;');
    expect(map).to.include('"|" 0;');
    const small = new RegExp(/"~(.+)" 0;/.exec(map)![1]!);
    expect(small.test(`${STREAM_BODY_FROM_BYTES - 1}|`)).to.equal(true);
    expect(small.test('0|')).to.equal(true);
    expect(small.test(`${STREAM_BODY_FROM_BYTES}|`)).to.equal(false);
    expect(small.test('|chunked')).to.equal(false);
    expect(small.test('12|chunked')).to.equal(false);
    // the unread body of an early answer is discarded for the node's 2 s at most, not nginx's default 30 s
    expect(site).to.include('lingering_time 2s;');
    expect(renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', lingeringTimeSeconds: 5 })).to.include('lingering_time 5s;');
  });

  it('limits writes (not reads) and large uploads per client address, answering 429 as JSON; 0 turns a limit off', () => {
    const site = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2' });
    expect(site).to.match(/map \$request_method \$stego_write_client \{\s+default \$binary_remote_addr;\s+GET "";\s+HEAD "";/);
    expect(site).to.include('limit_req_zone $stego_write_client zone=stego_client_writes:10m rate=200r/s;');
    expect(site).to.include('limit_conn_zone $stego_write_client zone=stego_client_writes_in_flight:10m;');
    for (const start of ['    location ~* ^/api/objects {', '    location ~* ^/admin/ {']) {
      const from = site.indexOf(start);
      const block = site.slice(from, site.indexOf('\n    }', from));
      expect(block).to.include('limit_req zone=stego_client_writes burst=400 nodelay;');
      expect(block).to.include('limit_req_status 429;');
      expect(block).to.include('limit_conn stego_client_writes_in_flight 64;');
      expect(block).to.include('limit_conn_status 429;');
    }
    const restFrom = site.indexOf('    location / {');
    expect(site.slice(restFrom, site.indexOf('\n    }', restFrom))).to.not.match(/limit_(req|conn) /);
    // large uploads have their own rate per client address: the streamed location, and object writes
    // declared large or chunked (keyed on $stego_stream_body, so small writes and reads are not counted)
    expect(site).to.match(/map \$stego_stream_body \$stego_large_upload_client \{\s+default \$binary_remote_addr;\s+0 "";/);
    expect(site).to.include('limit_req_zone $stego_large_upload_client zone=stego_client_large_uploads:10m rate=5r/s;');
    const streamedFrom = site.indexOf(`    location = ${STREAM_LOCATION} {`);
    const streamed = site.slice(streamedFrom, site.indexOf('\n    }', streamedFrom));
    expect(streamed).to.include('limit_req zone=stego_client_large_uploads burst=10 nodelay;');
    const objectsFrom = site.indexOf('    location ~* ^/api/objects {');
    const objects = site.slice(objectsFrom, site.indexOf('\n    }', objectsFrom));
    expect(objects).to.include('limit_req zone=stego_client_large_uploads burst=10 nodelay;');
    // one status line per location (nginx refuses a duplicate), also with the write rate off
    expect(objects.match(/limit_req_status 429;/g)).to.have.length(1);
    const noWriteRate = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', clientWritesPerSecond: 0 });
    const objectsOnly = noWriteRate.slice(noWriteRate.indexOf('    location ~* ^/api/objects {'));
    expect(objectsOnly.slice(0, objectsOnly.indexOf('\n    }')).match(/limit_req_status 429;/g)).to.have.length(1);
    expect(streamed).to.include('limit_req_status 429;');
    expect(streamed).to.not.include('stego_client_writes');
    expect(renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', clientLargeUploadsPerSecond: 0 })).to.not.include('stego_client_large_uploads');
    const page = site.slice(site.indexOf('location @stego_error_429 {'));
    expect(page).to.match(/^location @stego_error_429 \{\s+default_type application\/json;\s+add_header Retry-After 1 always;\s+return 429 '\{"error":\{"code":"rate_limited",/);
    const custom = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', clientWritesPerSecond: 7, clientWriteBurst: 9, clientWritesInFlight: 3 });
    expect(custom).to.include('rate=7r/s;').and.include('burst=9 nodelay;').and.include('limit_conn stego_client_writes_in_flight 3;');
    const off = renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', clientWritesPerSecond: 0, clientWritesInFlight: 0, clientLargeUploadsPerSecond: 0 });
    expect(off).to.not.match(/limit_req|limit_conn|stego_write_client/);
    expect(renderNginxSite({ listen: 8080, nodes, leaderId: 'n2', clientWritesInFlight: 0 })).to.include('limit_req zone').and.not.include('limit_conn ');
  });

  it('refuses addresses that could inject directives', () => {
    expect(() => renderNginxSite({ listen: 1, nodes: [{ id: 'x', address: '1.2.3.4:1; evil' }], leaderId: null })).to.throw(
      /invalid node address/,
    );
    expect(() => renderNginxSite({ listen: 1, nodes: [], leaderId: null })).to.throw(/at least one node/);
  });

  it('is accepted by the real nginx (nginx -t)', function () {
    const bin = findNginx();
    if (!bin) return this.skip();
    const prefix = mkdtempSync(join(tmpdir(), 'stego-nginx-t-'));
    try {
      for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, 'tmp', d), { recursive: true });
      const conf = join(prefix, 'nginx.conf');
      writeFileSync(conf, renderNginxConf({ prefix, listen: 18080, nodes, leaderId: 'n1', user: process.getuid?.() === 0 ? 'root' : undefined }));
      const out = execFileSync(bin, ['-t', '-p', prefix, '-c', conf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).to.be.a('string');
      expect(existsSync(conf)).to.equal(true);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});
