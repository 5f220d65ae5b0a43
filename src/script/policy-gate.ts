import { ExitCode, SafeRunError } from '../errors.js';
import { refusedStatements } from '../guard/statement-policy.js';
import type { QueryGate } from './gate.js';

/**
 * The gate with the statement policy in front: a refused statement never reaches the server.
 * It is a guard violation (exit 3), since the script is already running inside its transaction
 * and the runner rolls it back; the SQL a script sends is judged exactly as a `.sql` file is.
 */
export function policyGate(inner: QueryGate): QueryGate {
  return async (query) => {
    const refusals = await refusedStatements(query.sql, 'A statement the script sent');
    if (refusals.length) {
      const [first] = refusals;
      throw new SafeRunError(
        `The script sent a statement safe-run refuses: ${first!.reason}\n  statement: ${first!.statement.text.trim().slice(0, 200)}`,
        ExitCode.guardViolation,
        'The run was rolled back. Change the script and run it again.',
      );
    }
    return inner(query);
  };
}
