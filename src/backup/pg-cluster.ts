import { execa } from 'execa';
import net from 'node:net';
import path from 'node:path';
import type { OsUser } from './cluster-owner.js';

export interface ClusterStart {
  /** Directory holding pg_ctl and postgres of the cluster's major version. */
  readonly binDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Run pg_ctl as this user (root cannot start PostgreSQL); null: as ourselves. */
  readonly owner: OsUser | null;
  /** `-c name=value` settings that win over the data directory's own configuration. */
  readonly settings?: Readonly<Record<string, string>>;
  readonly timeoutSeconds?: number;
}

/**
 * `pg_ctl start -w`: returns once the server accepts connections (for a server in recovery,
 * once it is consistent). The throwaway test cluster and `restore --pitr` both start theirs here.
 */
export async function startCluster(options: ClusterStart): Promise<void> {
  const settings = Object.entries(options.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`);
  const args = ['-D', options.dataDir, '-l', options.logFile, '-w', '-t', String(options.timeoutSeconds ?? 60)];
  if (settings.length) args.push('-o', settings.join(' '));
  await execa(path.join(options.binDir, 'pg_ctl'), [...args, 'start'], {
    ...(options.owner ?? {}),
    cwd: path.dirname(options.dataDir),
  });
}

/** `pg_ctl stop -m fast`; a server that is already down is not an error. */
export async function stopCluster(binDir: string, dataDir: string, owner: OsUser | null): Promise<void> {
  await execa(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop'], {
    ...(owner ?? {}),
    cwd: path.dirname(dataDir),
    reject: false,
  });
}

/** Binds 127.0.0.1:`port` once and lets go: 0 gets any free port; a port in use rejects. */
export function freeLoopbackPort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const chosen = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(chosen));
    });
  });
}
