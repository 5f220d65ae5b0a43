/**
 * The wrapped command goes into a signed, append-only log that many people read: a password
 * that lands there can never be removed. Commands often carry a connection string, so every
 * argument is scrubbed of what looks like a secret before it is recorded or logged.
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/gi;
// libpq keyword strings ("host=db password=s3cret") and --password=… flags.
const KEYWORD_PASSWORD = /\b(password|passwd|pwd)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)/gi;
// Environment-style assignments passed through `env` or a shell: PGPASSWORD=…, API_TOKEN=….
const SECRET_ASSIGNMENT = /\b([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN))=\S*/g;

export const REDACTED = '***';

export function redactArg(arg: string): string {
  return arg
    .replace(URL_PASSWORD, `$1:${REDACTED}@`)
    .replace(KEYWORD_PASSWORD, `$1$2${REDACTED}`)
    .replace(SECRET_ASSIGNMENT, `$1=${REDACTED}`);
}

export function redactArgv(argv: readonly string[]): string[] {
  return argv.map(redactArg);
}

/** For messages: the argv as a person would type it, quoted where needed. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
