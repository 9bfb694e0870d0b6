// A real nginx master process run in the foreground under our supervision, with its whole world (config,
// pid, logs, temp files) in one prefix directory, reconfigured by rewriting the config and `nginx -s reload`
// (graceful: old workers finish their requests, so no connection is dropped).
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { renderNginxConf, type NginxMainOptions } from './nginx-config.js';

const execFileP = promisify(execFile);

const CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx', '/usr/bin/nginx'];

/** The nginx binary, from $NGINX_BIN, $PATH or the usual Debian/upstream locations; null if none. */
export function findNginx(): string | null {
  const fromEnv = process.env['NGINX_BIN'];
  const pathDirs = (process.env['PATH'] ?? '').split(':').filter(Boolean).map((d) => join(d, 'nginx'));
  for (const c of [fromEnv, ...pathDirs, ...CANDIDATES]) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* try the next one */
    }
  }
  return null;
}

export type NginxSettings = Omit<NginxMainOptions, 'leaderId'>;

export class NginxProcess {
  private child: ChildProcess | null = null;
  private readonly confPath: string;
  private leaderId: string | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    private readonly bin: string,
    private readonly settings: NginxSettings,
    private readonly onOutput: (line: string) => void = () => {},
  ) {
    this.confPath = join(settings.prefix, 'nginx.conf');
  }

  get currentLeader(): string | null {
    return this.leaderId;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private writeConfig(leaderId: string | null): void {
    const root = process.getuid?.() === 0;
    const conf = renderNginxConf({ ...this.settings, leaderId, user: this.settings.user ?? (root ? 'root' : undefined) });
    writeFileSync(this.confPath, conf);
  }

  async start(leaderId: string | null): Promise<void> {
    for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      mkdirSync(join(this.settings.prefix, 'tmp', d), { recursive: true });
    }
    this.leaderId = leaderId;
    this.writeConfig(leaderId);
    await execFileP(this.bin, ['-t', '-q', '-p', this.settings.prefix, '-c', this.confPath]);
    const child = spawn(this.bin, ['-p', this.settings.prefix, '-c', this.confPath, '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (d: string) => d.split('\n').filter(Boolean).forEach((l) => this.onOutput(l)));
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
  }

  /** Points writes at a new leader. No-op when unchanged. */
  async setLeader(leaderId: string | null): Promise<boolean> {
    if (!this.child || leaderId === this.leaderId) return false;
    this.leaderId = leaderId;
    this.writeConfig(leaderId);
    await execFileP(this.bin, ['-s', 'reload', '-p', this.settings.prefix, '-c', this.confPath]);
    return true;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGQUIT'); // graceful shutdown of the master and its workers
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
    this.child = null;
  }
}
