import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { parse } from 'pg-connection-string';

/**
 * NODE_EXTRA_CA_CERTS, applied where safe-run uses it: its own TLS connections to PostgreSQL,
 * the only TLS this process makes (a script's child never sees the variable, child-sandbox.ts).
 *
 * Node 20 reads every certificate the variable names before any code runs, 80 ms of every
 * command when it names the system bundle, as many images do; psql and pg_dump never pay it.
 * So bin/safe-run hands the file on as SAFE_RUN_EXTRA_CA_CERTS, and it is read here, for a
 * pool that will verify a server certificate. As with Node's variable, the certificates are
 * trusted besides Node's own, and a file that cannot be read is a warning, not an error.
 *
 * `config` is what createDb gives pg. pg merges the URL's parameters over it (connection-
 * parameters.js); the same merge is done here, with pg's own parser, so that the `ca` added
 * last is the one pg uses. Without the variable, or without TLS, the config is left as it is.
 */
export function withExtraCa(config: pg.PoolConfig & { readonly connectionString: string }): pg.PoolConfig {
  const file = process.env.SAFE_RUN_EXTRA_CA_CERTS;
  if (!file) return config;
  const { connectionString: _merged, ...merged } = { ...config, ...parse(config.connectionString) };
  const ssl: unknown = merged.ssl ?? sslFromEnvironment();
  if (!verifiesWithDefaultCas(ssl)) return config;
  const extra = readExtraCa(file);
  if (extra === null) return config;
  return { ...(merged as pg.PoolConfig), ssl: { ...(typeof ssl === 'object' ? ssl : {}), ca: [...tls().rootCertificates, extra] } };
}

/** TLS on, the server's certificate checked, and against Node's default authorities: no `ca` of the URL's own (sslrootcert). */
function verifiesWithDefaultCas(ssl: unknown): boolean {
  if (ssl === true || ssl === 'true') return true;
  if (typeof ssl !== 'object' || ssl === null) return false; // off, or pg's 'no-verify'
  const options = ssl as { ca?: unknown; rejectUnauthorized?: boolean };
  return !options.ca && options.rejectUnauthorized !== false;
}

/** pg's own reading of PGSSLMODE when the URL says nothing about TLS (connection-parameters.js). */
function sslFromEnvironment(): boolean | undefined {
  switch (process.env.PGSSLMODE) {
    case 'prefer':
    case 'require':
    case 'verify-ca':
    case 'verify-full':
      return true;
    default:
      // disable, no-verify (no certificate checked: nothing to add) or unset.
      return undefined;
  }
}

const read = new Map<string, string | null>();

function readExtraCa(file: string): string | null {
  if (!read.has(file)) {
    try {
      read.set(file, readFileSync(file, 'utf8'));
    } catch (error) {
      // Node's own words for the same case, once per process.
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(error as Error).message}`);
      read.set(file, null);
    }
  }
  return read.get(file)!;
}

/**
 * node:tls on first use: it is loaded only for a TLS connection with an extra CA file, and the
 * start-up snapshot (support/build/snapshot.ts) cannot hold it.
 */
function tls(): typeof import('node:tls') {
  return process.getBuiltinModule('node:tls');
}
