import { z } from 'zod';

/**
 * zod, as safe-run uses it: every module imports `z` from here, never from 'zod' (eslint
 * enforces it), so this setting is made before any schema is built, and zod loads only with
 * the first module that builds one (`--version` and `--help` load none).
 *
 * zod 4 compiles an object schema into a fast parser (`new Function`) on its first parse. A
 * command parses each schema once or a few times, so the compilation is never repaid: the
 * config's validation took 14 ms of the main thread with it and 5-8 without (BENCHMARKS.md).
 * The flag is read when a schema is built.
 */
z.config({ jitless: true });

export { z };
