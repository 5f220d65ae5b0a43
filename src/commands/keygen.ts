import type { CommandBody } from './registry.js';
import type { Argv } from 'yargs';
import { targetAnchor } from '../audit/anchor.js';
import { generateSigningKey } from '../audit/keys.js';
import { addSigningKey } from '../audit/add-key.js';
import { rotateSigningKey } from '../audit/rotate.js';
import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import { parseDatabaseUrl } from '../db/url.js';
import type { Logger } from '../logger.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export interface KeygenOptions {
  readonly force?: boolean;
  readonly rotate?: boolean;
  /** A second host's public key file: the current key signs a key.add entry introducing it. */
  readonly add?: string;
}

export interface KeygenResult {
  readonly keyId: string;
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  /** Set by --rotate: the retired key and the key.rotate entry that introduced the new one. */
  readonly previousKeyId?: string;
  readonly rotateEntrySeq?: number;
  /** Set by --add: the key that signed the key.add entry, and its seq. */
  readonly addedBy?: string;
  readonly addEntrySeq?: number;
}

/** `safe-run keygen [--force | --rotate]`. */
export async function keygen(config: Config, options: KeygenOptions, log: Logger): Promise<KeygenResult> {
  const paths = { signingKeyPath: config.signingKey, evidenceDir: config.evidenceDir };
  if (!options.rotate && !options.add) return generateSigningKey({ ...paths, force: options.force });
  // A bad URL stops here, before the key changes; an unreachable database only costs the anchor (a warning).
  if (config.databaseUrl) parseDatabaseUrl(config.databaseUrl);
  // The rotation is an audit entry like any other, so it moves the database anchor too when there is one.
  return withTarget(config.databaseUrl, async (target) => {
    const anchor = config.databaseUrl ? targetAnchor(target) : null;
    if (options.add) {
      const added = await addSigningKey({ ...paths, publicKeyFile: options.add, anchor, log });
      return {
        keyId: added.keyId,
        privateKeyPath: '',
        publicKeyPath: added.publicKeyPath,
        addedBy: added.signedBy,
        addEntrySeq: added.seq,
      };
    }
    const rotated = await rotateSigningKey({ ...paths, anchor, log });
    return {
      keyId: rotated.keyId,
      privateKeyPath: rotated.privateKeyPath,
      publicKeyPath: rotated.publicKeyPath,
      previousKeyId: rotated.previousKeyId,
      rotateEntrySeq: rotated.seq,
    };
  });
}

function renderKeygen(r: KeygenResult): string {
  if (r.addedBy)
    return `Added signing key ${r.keyId} (key.add is entry ${r.addEntrySeq}, signed by ${r.addedBy}).\n  public key:  ${r.publicKeyPath}`;
  const lines = r.previousKeyId
    ? [`Rotated the signing key: ${r.previousKeyId} -> ${r.keyId} (key.rotate is entry ${r.rotateEntrySeq}, signed by the old key).`]
    : [`Created signing key ${r.keyId}.`];
  lines.push(`  private key: ${r.privateKeyPath} (mode 0600; back it up, keep it out of the evidence directory)`);
  lines.push(`  public key:  ${r.publicKeyPath}`);
  return lines.join('\n');
}

interface KeygenArgs extends GlobalArgs {
  readonly force?: boolean;
  readonly rotate?: boolean;
  readonly add?: string;
}

export const keygenCommand: CommandBody<KeygenArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option('force', { type: 'boolean', describe: 'Replace an existing private key' })
      .option('rotate', { type: 'boolean', describe: 'Switch to a new key; the old key signs a key.rotate entry introducing it' })
      .option('add', { type: 'string', describe: "Let a second host's key sign this log: FILE.pub, introduced by a key.add entry" })
      .conflicts('force', 'rotate')
      .conflicts('add', ['force', 'rotate']),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    emit(ctx, await keygen(ctx.config, { force: argv.force, rotate: argv.rotate, add: argv.add }, ctx.log), renderKeygen);
  },
};
