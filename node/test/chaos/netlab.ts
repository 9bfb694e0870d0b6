// A private network for a chaos run: one network namespace per node slot, each joined to one Linux bridge
// by a veth pair, addresses from 198.19.<subnet>.0/24 (inside 198.18.0.0/15, RFC 2544's benchmarking range;
// the 198.18.0.0/16 half is left to other users of this machine). The bridge carries 198.19.<subnet>.1, so
// the run's clients in the root namespace reach every node; faults are iptables rules and qdiscs *inside*
// the namespaces and only ever match the other nodes' addresses, never the clients'.
//
// Everything is named after the subnet: namespaces `stc-<subnet>-s<slot>`, bridge `stc<subnet>br`, host veth
// ends `stc<subnet>v<slot>`. A pid file under /run claims the subnet; resources of a run whose process is
// gone are removed by the next run (sweepStale). destroy() is synchronous so it can run from an exit hook.
//
// The namespaces are bound to files in /run/stc-netns (unshare --net=FILE, entered with nsenter), not to
// /run/netns: tools that clean up "every netns that appeared since I started" (a local Kubernetes teardown
// on the same machine does exactly that) then cannot remove a running chaos network.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const PID_DIR = '/run';
const PID_PREFIX = 'stc-chaos-';
const NS_DIR = '/run/stc-netns';
const nsFile = (name: string) => `${NS_DIR}/${name}`;

function run(cmd: string, args: string[], opts: { ignoreError?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.ignoreError) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function nsExists(name: string): boolean {
  return existsSync(nsFile(name));
}

function removeNs(name: string): void {
  run('umount', [nsFile(name)], { ignoreError: true });
  rmSync(nsFile(name), { force: true });
}

function linkExists(name: string): boolean {
  return run('ip', ['link', 'show', name], { ignoreError: true }) !== '';
}

/** Removes what a dead run on `subnet` left behind: namespaces (their veths go with them) and the bridge. */
function removeSubnet(subnet: number): void {
  // host-side veth ends first: deleting a namespace destroys its pairs asynchronously, and a new lab on
  // the same subnet would find the old names still taken
  for (const line of run('ip', ['-o', 'link', 'show'], { ignoreError: true }).split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name && name.startsWith(`stc${subnet}v`)) run('ip', ['link', 'del', name], { ignoreError: true });
  }
  for (const name of existsSync(NS_DIR) ? readdirSync(NS_DIR) : []) {
    if (name.startsWith(`stc-${subnet}-`)) removeNs(name);
  }
  if (linkExists(`stc${subnet}br`)) run('ip', ['link', 'del', `stc${subnet}br`], { ignoreError: true });
}

/** Cleans up after chaos runs that were killed before their own cleanup ran. */
export function sweepStale(): number[] {
  const swept: number[] = [];
  for (const f of readdirSync(PID_DIR)) {
    if (!f.startsWith(PID_PREFIX)) continue;
    const subnet = Number(f.slice(PID_PREFIX.length));
    const pid = Number(readFileSync(`${PID_DIR}/${f}`, 'utf8').trim());
    if (Number.isInteger(subnet) && !alive(pid)) {
      removeSubnet(subnet);
      rmSync(`${PID_DIR}/${f}`, { force: true });
      swept.push(subnet);
    }
  }
  return swept;
}

export type Direction = 'both' | 'in';

export class NetLab {
  private destroyed = false;
  private readonly shaped = new Set<number>();
  readonly netemAvailable: boolean;

  private constructor(readonly subnet: number, readonly slots: number) {
    this.netemAvailable = false;
  }

  /** Claims a free 198.19.x.0/24 (x in 100..249) and builds the bridge and `slots` namespaces. */
  static create(slots: number): NetLab {
    if (process.getuid?.() !== 0) throw new Error('chaos runs need root (ip netns, iptables)');
    sweepStale();
    let subnet = -1;
    for (let i = 0; i < 150; i++) {
      const candidate = 100 + ((process.pid + labsCreated + i) % 150);
      const pidFile = `${PID_DIR}/${PID_PREFIX}${candidate}`;
      if (existsSync(pidFile) || linkExists(`stc${candidate}br`) || nsExists(`stc-${candidate}-s1`)) continue;
      writeFileSync(pidFile, String(process.pid), { flag: 'wx' });
      subnet = candidate;
      break;
    }
    if (subnet < 0) throw new Error('no free 198.19.x.0/24 for a chaos network');
    labsCreated++;
    const lab = new NetLab(subnet, 0);
    liveLabs.add(lab);
    installExitHook();
    try {
      lab.build(slots);
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  private build(slots: number): void {
    const br = this.bridge;
    run('ip', ['link', 'add', br, 'type', 'bridge']);
    // bridged frames must not traverse the host's iptables (br_netfilter): its FORWARD policy is not ours
    run('ip', ['link', 'set', br, 'type', 'bridge', 'nf_call_iptables', '0'], { ignoreError: true });
    run('ip', ['addr', 'add', `${this.hostIp}/24`, 'dev', br]);
    run('ip', ['link', 'set', br, 'up']);
    for (let s = 1; s <= slots; s++) this.addSlot(s);
    (this as { slots: number }).slots = slots;
    (this as { netemAvailable: boolean }).netemAvailable = this.probeNetem();
  }

  private addSlot(s: number): void {
    const ns = this.ns(s);
    const veth = `stc${this.subnet}v${s}`;
    mkdirSync(NS_DIR, { recursive: true });
    writeFileSync(nsFile(ns), '');
    run('unshare', [`--net=${nsFile(ns)}`, 'true']);
    // made from inside the namespace, with the host end sent to ours (this process is in the root netns)
    this.exec(s, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', veth, 'netns', String(process.pid)]);
    run('ip', ['link', 'set', veth, 'master', this.bridge, 'up']);
    this.exec(s, 'ip', ['addr', 'add', `${this.ip(s)}/24`, 'dev', 'eth0']);
    this.exec(s, 'ip', ['link', 'set', 'eth0', 'up']);
    this.exec(s, 'ip', ['link', 'set', 'lo', 'up']);
    // one chain per direction for our rules, so healing is a flush and nothing else is touched
    for (const [chain, hook] of [['STC-IN', 'INPUT'], ['STC-OUT', 'OUTPUT']] as const) {
      this.exec(s, 'iptables', ['-N', chain]);
      this.exec(s, 'iptables', ['-A', hook, '-j', chain]);
    }
  }

  private probeNetem(): boolean {
    const inNs = (args: string[]) => run('nsenter', [`--net=${nsFile(this.ns(1))}`, 'tc', ...args], { ignoreError: true });
    inNs(['qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', '1ms']);
    const ok = inNs(['qdisc', 'show', 'dev', 'eth0']).includes('netem');
    inNs(['qdisc', 'del', 'dev', 'eth0', 'root']);
    return ok;
  }

  get bridge(): string {
    return `stc${this.subnet}br`;
  }

  get hostIp(): string {
    return `198.19.${this.subnet}.1`;
  }

  ns(slot: number): string {
    return `stc-${this.subnet}-s${slot}`;
  }

  ip(slot: number): string {
    return `198.19.${this.subnet}.${10 + slot}`;
  }

  exec(slot: number, cmd: string, args: string[]): string {
    if (!this.destroyed && !nsExists(this.ns(slot))) {
      throw new Error(`network namespace ${this.ns(slot)} vanished: another process on this machine removed ${nsFile(this.ns(slot))}`);
    }
    return run('nsenter', [`--net=${nsFile(this.ns(slot))}`, cmd, ...args]);
  }

  /** Command prefix that runs a program inside a slot's namespace (nsenter execs it: same pid). */
  wrap(slot: number, argv: string[]): { cmd: string; args: string[] } {
    return { cmd: 'nsenter', args: [`--net=${nsFile(this.ns(slot))}`, ...argv] };
  }

  // ------------------------------------------------------------------ faults

  /** `slot` stops hearing from `from` (and, for 'both', stops sending to it). */
  block(slot: number, from: number, dir: Direction = 'both'): void {
    this.exec(slot, 'iptables', ['-A', 'STC-IN', '-s', this.ip(from), '-j', 'DROP']);
    if (dir === 'both') this.exec(slot, 'iptables', ['-A', 'STC-OUT', '-d', this.ip(from), '-j', 'DROP']);
  }

  /** Nodes in different groups cannot talk; slots in no group are unaffected. */
  partition(groups: number[][]): void {
    for (const g of groups) {
      for (const other of groups) {
        if (other === g) continue;
        for (const a of g) for (const b of other) this.block(a, b, 'in');
      }
    }
  }

  /** Random loss of packets from the other nodes (iptables statistic, both directions of the slot). */
  loss(slot: number, probability: number): void {
    for (let s = 1; s <= this.slots; s++) {
      if (s === slot) continue;
      this.exec(slot, 'iptables', ['-A', 'STC-IN', '-s', this.ip(s), '-m', 'statistic', '--mode', 'random', '--probability', probability.toFixed(3), '-j', 'DROP']);
      this.exec(slot, 'iptables', ['-A', 'STC-OUT', '-d', this.ip(s), '-m', 'statistic', '--mode', 'random', '--probability', probability.toFixed(3), '-j', 'DROP']);
    }
  }

  /**
   * Slows a slot's egress: netem delay (with jitter) where the kernel has it; otherwise a token bucket at a
   * low rate, whose queue delays every packet behind it (this kernel build has tbf but no netem).
   */
  slow(slot: number, delayMs: number): string {
    this.shaped.add(slot);
    if (this.netemAvailable) {
      this.exec(slot, 'tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${delayMs}ms`, `${Math.ceil(delayMs / 4)}ms`]);
      return `netem delay ${delayMs}ms`;
    }
    const rateKbit = Math.max(64, Math.round(8000 / Math.max(1, delayMs / 10)));
    this.exec(slot, 'tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', '4kb', 'latency', `${Math.max(50, delayMs * 4)}ms`]);
    return `tbf rate ${rateKbit}kbit latency ${Math.max(50, delayMs * 4)}ms`;
  }

  heal(): void {
    for (let s = 1; s <= this.slots; s++) {
      this.exec(s, 'iptables', ['-F', 'STC-IN']);
      this.exec(s, 'iptables', ['-F', 'STC-OUT']);
    }
    for (const s of this.shaped) run('nsenter', [`--net=${nsFile(this.ns(s))}`, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root'], { ignoreError: true });
    this.shaped.clear();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    removeSubnet(this.subnet);
    rmSync(`${PID_DIR}/${PID_PREFIX}${this.subnet}`, { force: true });
    liveLabs.delete(this);
  }
}

const liveLabs = new Set<NetLab>();
/** Labs made by this process so far: consecutive labs take different subnets. */
let labsCreated = 0;
const exitCallbacks = new Set<() => void>();
let hookInstalled = false;

/** Runs `fn` (synchronously) when the process exits, is interrupted or terminated, before the labs go. */
export function onExit(fn: () => void): () => void {
  installExitHook();
  exitCallbacks.add(fn);
  return () => exitCallbacks.delete(fn);
}

function cleanupAll(): void {
  for (const fn of exitCallbacks) {
    try {
      fn();
    } catch {
      // keep cleaning
    }
  }
  exitCallbacks.clear();
  for (const lab of liveLabs) lab.destroy();
}

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.exit(130);
    });
  }
}
