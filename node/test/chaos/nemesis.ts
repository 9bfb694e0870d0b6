// The nemesis: a schedule of faults that is a pure function of (seed, nodes, duration, kinds), and an
// executor that applies it to a ChaosCluster. Faults run one at a time: a fault window, then the fault is
// healed and the cluster gets a quiet window. Targets that depend on the cluster's state (the leader) are
// resolved when the step runs and recorded in the event log, so a report names exactly what happened.

import { SeededRandom } from '../../src/raft/rand.js';
import type { ChaosCluster, Member } from './cluster.js';

export const FAULT_KINDS = [
  'partition-majority',
  'partition-bridge',
  'isolate-leader',
  'one-way',
  'slow',
  'loss',
  'kill',
  'kill-leader',
  'kill-all',
  'pause',
  'pause-leader',
  'membership',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Step {
  /** ms after the run started. */
  at: number;
  kind: FaultKind;
  /** How long the fault lasts before it is healed. */
  duration: number;
  /** Seeded choices the executor maps onto the members present at that time. */
  picks: number[];
}

export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  kinds?: readonly FaultKind[];
  /** Fault window and quiet window ranges (ms). */
  faultMs?: [number, number];
  quietMs?: [number, number];
}

export function makeSchedule(o: ScheduleOptions): Step[] {
  const rnd = new SeededRandom(o.seed);
  const kinds = o.kinds ?? FAULT_KINDS;
  const [fMin, fMax] = o.faultMs ?? [2_000, 7_000];
  const [qMin, qMax] = o.quietMs ?? [1_500, 4_000];
  const steps: Step[] = [];
  let t = qMin;
  while (t < o.durationMs - fMin) {
    const kind = rnd.pick(kinds);
    const duration = Math.min(fMin + rnd.int(fMax - fMin + 1), o.durationMs - t);
    steps.push({ at: t, kind, duration, picks: Array.from({ length: 8 }, () => rnd.next()) });
    t += duration + qMin + rnd.int(qMax - qMin + 1);
  }
  return steps;
}

export interface NemesisEvent {
  t: number;
  kind: FaultKind | 'heal' | 'note';
  detail: string;
}

function shuffled<T>(items: readonly T[], picks: number[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor((picks[i % picks.length]! * 7919 * (i + 1)) % (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export class Nemesis {
  readonly events: NemesisEvent[] = [];
  readonly counts = new Map<FaultKind, number>();
  private stopped = false;
  private heals: (() => Promise<void> | void)[] = [];

  constructor(private readonly cluster: ChaosCluster, private readonly steps: Step[], private readonly now: () => number) {}

  private log(kind: NemesisEvent['kind'], detail: string): void {
    this.events.push({ t: this.now(), kind, detail });
    if (process.env.CHAOS_VERBOSE) console.log(`[nemesis ${this.now().toFixed(0)}ms] ${kind} ${detail}`);
  }

  stop(): void {
    this.stopped = true;
  }

  private async sleepUntil(t: number): Promise<void> {
    while (!this.stopped && this.now() < t) await new Promise((r) => setTimeout(r, Math.min(100, t - this.now())));
  }

  async run(): Promise<void> {
    for (const step of this.steps) {
      await this.sleepUntil(step.at);
      if (this.stopped) break;
      try {
        await this.apply(step);
        this.counts.set(step.kind, (this.counts.get(step.kind) ?? 0) + 1);
      } catch (err) {
        this.log('note', `${step.kind} could not be applied: ${(err as Error).message.split('\n')[0]}`);
      }
      await this.sleepUntil(step.at + step.duration);
      await this.healAll();
    }
    await this.healAll();
  }

  /** Heals the network, resumes paused and restarts killed members. Safe to call repeatedly. */
  async healAll(): Promise<void> {
    const heals = this.heals;
    this.heals = [];
    for (const h of heals) await h();
    this.cluster.lab.heal();
    for (const m of this.cluster.members.values()) {
      if (m.state === 'paused') this.cluster.resume(m.id);
      if (m.state === 'stopped') this.cluster.restart(m.id);
    }
    if (heals.length) this.log('heal', 'network healed, members resumed/restarted');
  }

  private members(): Member[] {
    return [...this.cluster.members.values()];
  }

  private async apply(step: Step): Promise<void> {
    const c = this.cluster;
    const lab = c.lab;
    const p = step.picks;
    const ms = this.members();
    const pick = (i: number, from: Member[] = ms) => from[Math.floor(p[i]! * from.length)]!;
    const leader = async () => {
      const id = await c.currentLeader();
      return id ? c.members.get(id) : undefined;
    };
    this.heals.push(() => undefined);
    switch (step.kind) {
      case 'partition-majority': {
        const order = shuffled(ms, p);
        const minority = order.slice(0, Math.floor(ms.length / 2));
        const majority = order.slice(minority.length);
        lab.partition([minority.map((m) => m.slot), majority.map((m) => m.slot)]);
        this.log(step.kind, `{${minority.map((m) => m.id)}} | {${majority.map((m) => m.id)}}`);
        return;
      }
      case 'partition-bridge': {
        // two halves that both see one bridge node (Jepsen's "bridge"): no majority sees every other member
        const order = shuffled(ms, p);
        const bridge = order[0]!;
        const rest = order.slice(1);
        const a = rest.slice(0, Math.ceil(rest.length / 2));
        const b = rest.slice(a.length);
        lab.partition([a.map((m) => m.slot), b.map((m) => m.slot)]);
        this.log(step.kind, `{${a.map((m) => m.id)}} <- ${bridge.id} -> {${b.map((m) => m.id)}}`);
        return;
      }
      case 'isolate-leader': {
        const l = (await leader()) ?? pick(0);
        lab.partition([[l.slot], ms.filter((m) => m !== l).map((m) => m.slot)]);
        this.log(step.kind, `${l.id} isolated`);
        return;
      }
      case 'one-way': {
        const a = pick(0);
        const others = ms.filter((m) => m !== a);
        const b = pick(1, others);
        lab.block(b.slot, a.slot, 'in');
        this.log(step.kind, `${b.id} no longer receives from ${a.id}`);
        return;
      }
      case 'slow': {
        const targets = shuffled(ms, p).slice(0, 1 + Math.floor(p[2]! * Math.ceil(ms.length / 2)));
        const delay = 20 + Math.floor(p[3]! * 180);
        for (const m of targets) this.log(step.kind, `${m.id}: ${lab.slow(m.slot, delay)}`);
        return;
      }
      case 'loss': {
        const m = pick(0);
        const prob = 0.05 + p[1]! * 0.35;
        lab.loss(m.slot, prob);
        this.log(step.kind, `${m.id} drops ${(prob * 100).toFixed(0)}% of peer packets`);
        return;
      }
      case 'kill':
      case 'kill-leader': {
        const m = step.kind === 'kill-leader' ? ((await leader()) ?? pick(0)) : pick(0);
        await c.kill(m.id);
        this.log(step.kind, `SIGKILL ${m.id}`);
        return;
      }
      case 'kill-all': {
        await Promise.all(ms.map((m) => c.kill(m.id)));
        this.log(step.kind, `SIGKILL ${ms.map((m) => m.id)}`);
        return;
      }
      case 'pause':
      case 'pause-leader': {
        const m = step.kind === 'pause-leader' ? ((await leader()) ?? pick(0)) : pick(0);
        c.pause(m.id);
        this.log(step.kind, `SIGSTOP ${m.id}`);
        return;
      }
      case 'membership':
        await this.replaceMember(pick(0));
        return;
    }
  }

  /**
   * Removes a member through the admin API, wipes it, and adds a fresh member (new id, STEGO_JOIN=1) in its
   * namespace: the configuration goes n → n-1 → n through two single-member changes.
   */
  private async replaceMember(victim: Member): Promise<void> {
    const c = this.cluster;
    const others = this.members().filter((m) => m !== victim && m.state === 'running');
    const via = others[0];
    if (!via) throw new Error('no member to send the change to');
    const del = await c.removeMember(victim.id, via);
    this.log('membership', `DELETE /admin/members/${victim.id} via ${via.id} → ${del.status}`);
    if (del.status !== 200 && del.status !== 204) throw new Error(`remove ${victim.id} → ${del.status} ${JSON.stringify(del.body)}`);
    // the removed member stops serving on its own; its process and data go, its data dir is kept for the disk checks
    await c.waitForLeader(20_000, others);
    await c.kill(victim.id);
    c.forget(victim.id);
    c.retired.push(victim);
    const { member, status, body } = await c.addMember(victim.slot, via);
    this.log('membership', `POST /admin/members ${member.id} via ${via.id} → ${status}${status >= 300 ? ` ${JSON.stringify(body)}` : ''}`);
    if (status >= 300) throw new Error(`add ${member.id} → ${status}`);
  }
}
