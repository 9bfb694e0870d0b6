// Schemathesis (PyPI) drives the API from the OpenAPI document every node serves, against a real node
// process: examples, coverage and fuzzing phases, with the project's checks (stego_checks.py: no 5xx but
// 503 + Retry-After, JSON errors) and schemathesis' own response checks. The node must survive with its
// RSS under the bound. Install: `npm run fuzz:setup` (a venv in ~/.cache/stegocluster/schemathesis-venv).
// Each operation gets the token of the security scheme the document names for it (a config file with
// schemathesis' OpenAPI-aware auth: apiToken → the node's API token, adminToken → its admin token), and
// the ignored_auth check sends the guarded operations without a token and wants them refused.
// SCHEMATHESIS_SECONDS sets the time budget (default 60).

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cluster, REPO_ROOT } from '../cluster/harness.js';
import { rssBytes, RSS_BOUND_BYTES, startFuzzTarget } from './target.js';

export const SCHEMATHESIS_BIN = process.env.SCHEMATHESIS_BIN ?? join(homedir(), '.cache/stegocluster/schemathesis-venv/bin/schemathesis');
const SECONDS = Number(process.env.SCHEMATHESIS_SECONDS ?? 60);

/** One line per failing operation and check, from schemathesis' FAILURES section. */
function failureHeadlines(text: string): string {
  const out = new Set<string>();
  for (const m of text.matchAll(/^_{3,} ([A-Z]+ \S+) _{3,}$[\s\S]*?^\s+(\d{3} from [^\n]+|[^\n]*(?:failed|mismatch)[^\n]*)$/gm)) out.add(`${m[1]}: ${m[2]!.trim()}`);
  return [...out].join('\n');
}

describe('fuzz: schemathesis from the OpenAPI document', function () {
  this.timeout((SECONDS + 240) * 1000);
  let cluster: Cluster;

  before(async function () {
    if (!existsSync(SCHEMATHESIS_BIN)) throw new Error(`${SCHEMATHESIS_BIN} missing: run npm run fuzz:setup`);
    cluster = await startFuzzTarget();
  });
  after(async () => {
    await cluster?.stop();
  });

  it(`${SECONDS} s of generated requests: project checks pass, node alive, RSS bounded`, async () => {
    const node = cluster.node('n1');
    let maxRss = 0;
    const sampler = setInterval(() => {
      if (node.pid) maxRss = Math.max(maxRss, rssBytes(node.pid));
    }, 200);
    const out: string[] = [];
    // the secrets reach schemathesis through its environment, not its command line
    const config = join(tmpdir(), `stc-schemathesis-${process.pid}.toml`);
    writeFileSync(config, '[auth.openapi.apiToken]\nbearer = "${STEGO_FUZZ_API_TOKEN}"\n\n[auth.openapi.adminToken]\nbearer = "${STEGO_FUZZ_ADMIN_TOKEN}"\n', { mode: 0o600 });
    const code = await new Promise<number>((resolve, reject) => {
      const st = spawn(SCHEMATHESIS_BIN, [
        '--config-file', config,
        'run', `${node.url}/openapi.json`,
        '--url', node.url,
        '--checks', 'no_5xx_but_503_with_retry_after,errors_are_json,response_headers_conformance,ignored_auth',
        '--phases', 'examples,coverage,fuzzing',
        '--max-time', String(SECONDS),
        '--seed', process.env.FUZZ_SEED ?? '1',
        '--workers', '2',
        // POST /admin/members may wait up to 30 s for a learner to catch up before answering 202 (documented)
        '--request-timeout', '45',
        '--suppress-health-check', 'all',
        '--no-color',
      ], {
        env: {
          ...process.env,
          SCHEMATHESIS_HOOKS: 'stego_checks',
          PYTHONPATH: join(REPO_ROOT, 'node/test/fuzz/schemathesis'),
          STEGO_FUZZ_API_TOKEN: cluster.apiToken,
          STEGO_FUZZ_ADMIN_TOKEN: cluster.adminToken,
        },
        // schemathesis keeps its example database in ./.schemathesis: not in the repository
        cwd: tmpdir(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      st.stdout.on('data', (b: Buffer) => out.push(b.toString()));
      st.stderr.on('data', (b: Buffer) => out.push(b.toString()));
      st.once('error', reject);
      st.once('exit', (c) => resolve(c ?? 1));
    });
    clearInterval(sampler);
    rmSync(config, { force: true });
    const text = out.join('');
    const logFile = join(tmpdir(), `stc-schemathesis-${process.pid}.log`);
    writeFileSync(logFile, text);
    const summary = text.split('\n').filter((l) => /passed|failed|Test cases|operations|Seed|==/.test(l)).slice(-12).join('\n');
    console.log(`      schemathesis exit ${code}, max RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB\n${summary.replace(/^/gm, '      ')}`);
    expect(node.state, 'node process alive').to.equal('running');
    expect(maxRss).to.be.below(RSS_BOUND_BYTES);
    // failures of our checks and requests the node never answered fail the test; schemathesis' own
    // runtime errors (its generator crashing on a schema) are reported but are not findings about the node
    const failures = [...text.matchAll(/❌ (ST\d+ [^\n]*?): (\d+)/g)].map((m) => `${m[1]}: ${m[2]}`);
    const network = /Network Error: (\d+)/.exec(text)?.[1];
    const problems = [...failures, ...(network ? [`requests unanswered within 45 s: ${network}`] : [])];
    if (code !== 0 && problems.length === 0 && !/Runtime Error/.test(text)) problems.push(`schemathesis exited ${code}`);
    if (problems.length) throw new Error(`schemathesis: ${problems.join('; ')} (full output: ${logFile})\n${failureHeadlines(text)}`);
    expect((await cluster.request('n1', '/healthz')).status).to.equal(200);
  });
});
