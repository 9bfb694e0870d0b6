// Capacity of the filesystem holding the data directory, read at scrape time with statfs(2). In
// Kubernetes the kubelet exports the same numbers per PVC (kubelet_volume_stats_*), but only where the
// kubelet's metrics are scraped; the node reports its own so the disk alert works everywhere.
import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';

export function registerVolumeMetrics(registry: Registry, dataDir: string): void {
  const registers = [registry];
  // each gauge asks the kernel itself: a registry collects its metrics concurrently, so one gauge cannot
  // rely on the other having refreshed a shared reading first (a first scrape would report 0 bytes free)
  const gauge = (name: string, help: string, read: (s: { blocks: number; bavail: number; bsize: number }) => number): void => {
    new Gauge({
      name, help, registers,
      async collect() {
        try {
          this.set(read(await statfs(dataDir)));
        } catch {
          this.reset(); // the directory vanished: no number rather than a stale one
        }
      },
    });
  };
  gauge('stego_storage_volume_size_bytes', 'size of the filesystem holding the data directory', (s) => s.blocks * s.bsize);
  gauge('stego_storage_volume_available_bytes', 'bytes an unprivileged writer can still use on that filesystem', (s) => s.bavail * s.bsize);
}
