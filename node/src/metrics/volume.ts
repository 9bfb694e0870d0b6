// Capacity of the filesystem holding the data directory, read at scrape time with statfs(2). In
// Kubernetes the kubelet exports the same numbers per PVC (kubelet_volume_stats_*), but only where the
// kubelet's metrics are scraped; the node reports its own so the disk alert works everywhere.
import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';

export function registerVolumeMetrics(registry: Registry, dataDir: string): void {
  const registers = [registry];
  let last: { size: number; available: number } | undefined;
  // one statfs per scrape feeds both gauges: the first one's collect refreshes, the second reads it
  new Gauge({
    name: 'stego_storage_volume_size_bytes', help: 'size of the filesystem holding the data directory', registers,
    async collect() {
      try {
        const s = await statfs(dataDir);
        last = { size: s.blocks * s.bsize, available: s.bavail * s.bsize };
        this.set(last.size);
      } catch {
        last = undefined; // the directory vanished: report nothing rather than a stale number
      }
    },
  });
  new Gauge({
    name: 'stego_storage_volume_available_bytes', help: 'bytes an unprivileged writer can still use on that filesystem', registers,
    collect() {
      if (last) this.set(last.available);
    },
  });
}
