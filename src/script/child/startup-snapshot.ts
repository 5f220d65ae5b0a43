import Module from 'node:module';
import v8 from 'node:v8';
import * as bundledKysely from 'kysely';
import { CHILD_KYSELY } from '../../own-build.js';
import { transpiler } from './evaluate.js';
import { serve } from './serve.js';

/**
 * The entry of the script child's start-up snapshot (dist/bundle/child.blob, made by `npm run
 * build`; ../child-sandbox.ts starts the child from it when it fits this Node). Building loads
 * sucrase and jiti and makes the transpiler, so a child starts with them in its heap instead
 * of reading and running them under the permission model, where every file read is checked.
 * kysely is inside too, bundled here. A snapshot cannot hold a module loaded by require(), and
 * the script must share the child's one copy of it (kysely.ts): so the copy in the heap is put
 * into require's cache when the child starts, under the file both would otherwise read
 * (CHILD_KYSELY), and that file is never read (25-40 ms of every TypeScript run's describe).
 * The rules of src/startup-snapshot.ts hold here too: nothing that depends on the moment or
 * the machine is computed while building.
 */
transpiler();

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The child is started in the script's directory; the cached one is where the build ran.
  process.chdir('.');
  shareKysely();
  serve();
});

function shareKysely(): void {
  const module = new Module(CHILD_KYSELY);
  module.filename = CHILD_KYSELY;
  module.exports = bundledKysely;
  module.loaded = true;
  Module.createRequire(CHILD_KYSELY).cache[CHILD_KYSELY] = module;
}
