import v8 from 'node:v8';
import { transpiler } from './evaluate.js';
import { serve } from './serve.js';

/**
 * The entry of the script child's start-up snapshot (dist/bundle/child.blob, made by `npm run
 * build`; ../child-sandbox.ts starts the child from it when it fits this Node). Building loads
 * sucrase and jiti and makes the transpiler, so a child starts with them in its heap instead
 * of reading and running them under the permission model, where every file read is checked.
 * kysely is not inside: a snapshot cannot hold a module loaded by require(), and the script
 * must share the child's one copy of it (kysely.ts). The rules of src/startup-snapshot.ts hold
 * here too: nothing that depends on the moment or the machine is computed while building.
 */
transpiler();

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The child is started in the script's directory; the cached one is where the build ran.
  process.chdir('.');
  serve();
});
