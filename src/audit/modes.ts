/**
 * The evidence directory holds backups of users' emails and sessions and the record of who
 * did what: owner only. Directories are created with these modes; files that another
 * program writes (pg_dump) are chmod'ed after it wrote them. `doctor` warns on looser modes.
 */
export const EVIDENCE_DIR_MODE = 0o700;
export const EVIDENCE_FILE_MODE = 0o600;
