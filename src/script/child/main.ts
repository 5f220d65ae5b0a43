/**
 * The entry of a TypeScript script's child process (started by ../child-process.ts) when it
 * loads its modules; startup-snapshot.ts is the entry of its start-up snapshot.
 */
import { serve } from './serve.js';

serve();
