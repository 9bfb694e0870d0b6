// The structural rules of eslint.config.js do what docs/architecture.md ("Layers") says: `npm run lint`
// passing means little unless a forbidden import would fail it. Each case lints a one-line module placed,
// by its path, in a layer; the cycle case lints two real files that import each other.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import { projectRoot } from '../node/src/assets.js';

const root = projectRoot();

async function ruleIds(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

describe('eslint.config.js', function () {
  this.timeout(60_000);

  const forbidden: Array<[string, string, string]> = [
    ['the cluster driver', 'node/src/cluster/probe.ts', '../http/errors.js'],
    ['the transport', 'node/src/transport/probe.ts', '../http/http-config.js'],
    ['the CLI', 'node/src/cli/probe.ts', '../http/filename.js'],
    ['a nested stego module', 'node/src/stego/png/probe.ts', '../../http/errors.js'],
    ['the Raft core (storage)', 'node/src/raft/probe.ts', '../storage/durable-log.js'],
    ['the Raft core (logger)', 'node/src/raft/probe.ts', '../log.js'],
    ['storage (cluster)', 'node/src/storage/probe.ts', '../cluster/raft-node.js'],
    ['a barrel', 'node/src/http/probe.ts', '../auth/index.js'],
    ['an entry point', 'node/src/cluster/probe.ts', '../main.js'],
    ['the HTTP shell (the cluster service)', 'node/src/http/probe.ts', '../cluster/service.js'],
    ['a route (the Raft driver)', 'node/src/http/routes/probe.ts', '../../cluster/raft-node.js'],
  ];
  for (const [who, file, specifier] of forbidden) {
    it(`refuses ${specifier} in ${who}`, async () => {
      expect(await ruleIds(file, `import '${specifier}';\n`)).to.deep.equal(['no-restricted-imports']);
    });
  }

  const allowed: Array<[string, string]> = [
    ['node/src/http/probe.ts', '../cluster/api.js'],
    ['node/src/http/routes/probe.ts', '../../cluster/errors.js'],
    ['node/src/http/routes/probe.test.ts', '../../cluster/test-cluster.js'],
    ['node/src/cluster/probe.ts', '../raft/rawnode.js'],
    ['node/src/transport/probe.ts', '../raft/message.js'],
    ['node/src/cli/probe.ts', '../stego/engine.js'],
    ['node/src/main.ts', './http/app.js'],
  ];
  for (const [file, specifier] of allowed) {
    it(`lets ${file} import ${specifier}`, async () => {
      expect(await ruleIds(file, `import '${specifier}';\n`)).to.deep.equal([]);
    });
  }

  const httpFields: Array<[string, string]> = [
    ['node/src/workers/probe.ts', 'export class E extends Error {\n  readonly status = 503;\n}\n'],
    ['node/src/cluster/probe.ts', 'export class E extends Error {\n  constructor(readonly statusCode: number) {\n    super();\n  }\n}\n'],
    ['node/src/stego/png/probe.ts', 'export class E extends Error {\n  constructor(public expose = true) {\n    super();\n  }\n}\n'],
    ['node/src/storage/probe.ts', 'export class E extends Error {\n  constructor() {\n    super();\n    this.status = 500;\n  }\n}\n'],
  ];
  for (const [file, code] of httpFields) {
    it(`refuses an HTTP-status field on a class in ${file}`, async () => {
      expect(await ruleIds(file, code)).to.include('no-restricted-syntax');
    });
  }

  it('lets the HTTP shell give its errors a status, and domain classes a status() method', async () => {
    expect(await ruleIds('node/src/http/probe.ts', 'export class E extends Error {\n  readonly status = 400;\n}\n')).to.deep.equal([]);
    expect(await ruleIds('node/src/cluster/probe.ts', 'export class S {\n  status(): number {\n    return 1;\n  }\n}\n')).to.deep.equal([]);
  });

  it('refuses an import cycle', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'stego-lint-'));
    try {
      await writeFile(path.join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = (): number => b + 1;\n");
      await writeFile(path.join(dir, 'b.ts'), "import { a } from './a.js';\nexport const b = 1;\nexport const c = (): number => a();\n");
      const eslint = new ESLint({ cwd: dir, overrideConfigFile: path.join(root, 'eslint.config.js') });
      const [result] = await eslint.lintFiles([path.join(dir, 'a.ts')]);
      expect(result!.messages.map((m) => m.ruleId)).to.include('import-x/no-cycle');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
