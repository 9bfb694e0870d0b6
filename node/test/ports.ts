// Free ports for the servers tests start in other processes (nginx, nodes, the operator, Prometheus).
//
// A port is chosen below the kernel's ephemeral range on purpose. A port the kernel hands out for
// `listen(0)` comes from that range, which is also where every outgoing connection gets its source port:
// between the moment a test learns the port and the moment the child process binds it, a connection made by
// anything on the machine (the kube-apiserver to etcd, Prometheus scraping, nginx to a node) can take it,
// and the child dies with EADDRINUSE. Below the range only another listener can take it. Ports are also
// kept below Kubernetes' NodePort range.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The first port of the ephemeral range (Linux default 32768), below which ports are chosen. */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > 12_000) return first;
  } catch {
    // not Linux: the IANA ephemeral range starts at 49152
  }
  return 49_152;
}

const LOW = 10_000;
/** Kubernetes' NodePort range starts at 30000: kube-proxy's rules take traffic to those ports on the local Kubernetes. */
const NODE_PORTS = 30_000;
const HIGH = Math.min(ephemeralStart(), NODE_PORTS);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    // all addresses, as the servers under test bind: a port free on 127.0.0.1 only is not free
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

/** A block of `n` consecutive free ports below the ephemeral range (node ports are base+i). */
export async function freePortBlock(n: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - n));
    const ok = await Promise.all(Array.from({ length: n }, (_, i) => canListen(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no block of ${n} free ports found between ${LOW} and ${HIGH}`);
}

/** One free port below the ephemeral range. */
export function freePort(): Promise<number> {
  return freePortBlock(1);
}
