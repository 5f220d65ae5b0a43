import { z } from '../zod.js';
import { DURATION_EXAMPLES, matchDurationMs } from './duration.js';

/**
 * The raw config as a user writes it (SPEC "Configuration"). `.strict()` everywhere: an
 * unknown key is almost always a typo of a guard setting, and a silently ignored guard is
 * worse than an error.
 */
const duration = z.string().refine((value) => matchDurationMs(value) !== null, `expected a duration such as ${DURATION_EXAMPLES}`);

export const rawConfigSchema = z
  .object({
    database: z.string().optional(),
    // The environment variable holding the URL, when it is not DATABASE_URL (keeps the password out of the file).
    databaseEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as APP_DATABASE_URL')
      .optional(),
    scriptsDir: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
    evidenceDir: z.string().optional(),
    signingKey: z.string().optional(),
    criticalTables: z
      .record(
        z.string(),
        z
          .object({ maxDropPercent: z.number().min(0).max(100).optional(), maxUpdatePercent: z.number().min(0).max(100).optional() })
          .strict(),
      )
      .optional(),
    backup: z
      .object({
        scope: z.enum(['guarded', 'touched', 'full', 'none']).optional(),
        compress: z.number().int().min(0).max(9).optional(),
        jobs: z.number().int().min(1).max(64).optional(),
        lockWaitTimeout: duration.optional(),
        // pg_dump (default) dumps the tables in scope; pgbackrest relies on the stanza's backups
        // and WAL archive instead, for databases too large to dump before every run.
        mode: z.enum(['pg_dump', 'pgbackrest']).optional(),
        pgbackrest: z
          .object({
            stanza: z.string().min(1),
            configPath: z.string().min(1).optional(),
            type: z.literal('incr').optional(),
            archiveTimeout: duration.optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .refine((b) => b.mode !== 'pgbackrest' || b.pgbackrest !== undefined, {
        message: 'mode "pgbackrest" needs backup.pgbackrest.stanza',
        path: ['pgbackrest'],
      })
      .optional(),
    // `snapshot --exact` counts every table estimated at or below this; other snapshots count
    // only what proves something (critical, declared and cascaded tables, and exactTables).
    exactCountThreshold: z.number().int().min(0).optional(),
    // Tables that `snapshot`, `check` and every run count exactly, besides the critical ones.
    exactTables: z.array(z.string().min(1)).optional(),
    statementTimeout: duration.optional(),
    lockTimeout: duration.optional(),
    // Directory holding pg_dump/pg_restore when neither PATH nor /usr/lib/postgresql/N/bin fits.
    pgBinDir: z.string().optional(),
    // The script's session logs in as this role, so superuser-only escapes fail at the server.
    scriptRole: z.string().min(1).optional(),
    // A second URL for the script's session; its password never reaches argv or the log.
    scriptDatabaseUrl: z.string().min(1).optional(),
    // OS user of a TypeScript script's child process when safe-run runs as root.
    scriptUser: z.string().min(1).optional(),
    // Fingerprints of the signing keys this host accepts, kept outside the evidence directory.
    trustedKeys: z
      .array(z.string().regex(/^[0-9a-f]{16,64}$/, 'expected a key fingerprint (hex, as `safe-run keygen` prints it)'))
      .optional(),
    // Commands that receive each new signed chain head as JSON on stdin.
    witness: z.array(z.object({ command: z.string().min(1), required: z.boolean().optional() }).strict()).optional(),
    // Tables whose every write the ledger records (safe-run protect), and those whose rows it keeps.
    protect: z
      .object({ tables: z.array(z.string().min(1)).optional(), keepRows: z.array(z.string().min(1)).optional() })
      .strict()
      .optional(),
    // "fingerprint" stores a hash of the normalised statement only: literals can hold personal data.
    ledger: z
      .object({ statementText: z.enum(['text', 'full', 'fingerprint']).optional(), keepRowsMax: z.number().int().min(0).optional() })
      .strict()
      .optional(),
    // Where the signed chain lives: "file" (audit.jsonl in evidenceDir) or the URL of a dedicated
    // evidence database shared by every host (env SAFE_RUN_EVIDENCE_STORE overrides).
    evidence: z
      .object({
        store: z
          .string()
          .refine((v) => v === 'file' || /^postgres(ql)?:\/\//.test(v), 'expected "file" or a postgres:// URL of an evidence database')
          .optional(),
      })
      .strict()
      .optional(),
    environments: z
      .record(
        z.string(),
        z
          .object({
            hostPattern: z.string(),
            requireReason: z.boolean().optional(),
            confirm: z.boolean().optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof rawConfigSchema>;
