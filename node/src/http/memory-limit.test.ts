import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { cgroupMemoryLimit, memoryLimitBytes } from './memory-limit.js';
import { inflightBudgetDefault } from './http-config.js';

async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'cgroup-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

describe('memory limit the node sees', () => {
  const roots: string[] = [];
  after(async () => {
    for (const r of roots) await rm(r, { recursive: true, force: true });
  });

  it('reads cgroup v2 memory.max on the process path, the tightest ancestor winning', async () => {
    const root = await tree({
      'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
      'sys/fs/cgroup/kubepods/pod1/ctr/memory.max': 'max\n',
      'sys/fs/cgroup/kubepods/pod1/memory.max': '536870912\n',
      'sys/fs/cgroup/kubepods/memory.max': '1073741824\n',
    });
    roots.push(root);
    expect(cgroupMemoryLimit(root)).to.equal(536870912);
  });

  it('reads cgroup v1 memory.limit_in_bytes and treats the huge "unlimited" value as none', async () => {
    const limited = await tree({
      'proc/self/cgroup': '12:cpu,cpuacct:/x\n9:memory:/docker/abc\n',
      'sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': '268435456\n',
    });
    const unlimited = await tree({
      'proc/self/cgroup': '9:memory:/\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
    });
    roots.push(limited, unlimited);
    expect(cgroupMemoryLimit(limited)).to.equal(268435456);
    expect(cgroupMemoryLimit(unlimited)).to.equal(undefined);
    expect(memoryLimitBytes(unlimited)).to.equal(totalmem());
  });

  it('derives the body budget: a quarter of memory, at least one body limit, at most 1 GiB', () => {
    expect(inflightBudgetDefault(50 << 20, 512 << 20)).to.equal(128 << 20);
    expect(inflightBudgetDefault(50 << 20, 128 << 20)).to.equal(50 << 20);
    expect(inflightBudgetDefault(50 << 20, 64 * 2 ** 30)).to.equal(2 ** 30);
  });
});
