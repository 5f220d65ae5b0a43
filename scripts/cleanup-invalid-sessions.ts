import { defineScript, sql } from 'safe-run';

/**
 * The incident's session cleanup, ported faithfully (incident-users-table-empty.md,
 * appendix): a live OIDC session whose account is missing or inactive is invalid and
 * deleted; a session without an account is an unauthenticated one and kept; expired
 * sessions are deleted too. It only ever deletes `Session` rows of oidc_models.
 */
interface SessionCheck {
  id: string;
  account_id: string | null;
  user_found: boolean;
  user_active: boolean | null;
}

export default defineScript({
  name: 'cleanup-invalid-sessions',
  description: 'Delete OIDC sessions whose account is missing or inactive, and expired sessions',
  touches: { oidc_models: ['delete'] },
  limits: { oidc_models: { delete: 10_000 } },
  critical: ['users'],
  async run({ db, log, dryRun }) {
    // One query instead of the original per-session lookup. The account id lives in JSON
    // (no foreign key), under `accountId` or the older `account`. Comparing as text keeps a
    // malformed id from aborting the run. A session with no expiry counts as live.
    const sessions = await sql<SessionCheck>`
      select s.id,
             coalesce(s.payload->>'accountId', s.payload->>'account') as account_id,
             u.id is not null as user_found,
             u.is_active as user_active
      from oidc_models s
      left join users u on u.id::text = coalesce(s.payload->>'accountId', s.payload->>'account')
      where s.kind = 'Session' and (s.expires_at is null or s.expires_at > now())
      order by s.id`.execute(db);

    const invalidIds: string[] = [];
    let valid = 0;
    let unauthenticated = 0;
    for (const session of sessions.rows) {
      if (!session.account_id) unauthenticated++;
      else if (!session.user_found || session.user_active === false) {
        log.info(`invalid session ${session.id.slice(0, 12)}…: ${session.user_found ? 'user inactive' : 'user not found'}`);
        invalidIds.push(session.id);
      } else valid++;
    }
    log.info(
      `found ${sessions.rows.length} live sessions: ${valid} valid, ${unauthenticated} unauthenticated, ${invalidIds.length} invalid`,
    );

    const deletedInvalid = invalidIds.length
      ? await db.deleteFrom('oidc_models').where('kind', '=', 'Session').where('id', 'in', invalidIds).executeTakeFirst()
      : { numDeletedRows: 0n };
    const deletedExpired = await db
      .deleteFrom('oidc_models')
      .where('kind', '=', 'Session')
      .where('expires_at', '<=', sql<Date>`now()`)
      .executeTakeFirst();

    const expired = Number(deletedExpired.numDeletedRows);
    const deleted = Number(deletedInvalid.numDeletedRows) + expired;
    log.info(`${dryRun ? 'would delete' : 'deleted'} ${deleted} sessions (${invalidIds.length} invalid, ${expired} expired)`);
    return { valid, unauthenticated, invalid: invalidIds.length, expired, deleted };
  },
});
