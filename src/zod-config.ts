import { z } from 'zod';

/**
 * zod 4 compiles an object schema into a fast parser (`new Function`) on its first parse. A
 * command parses each schema once or a few times, so the compilation is never repaid: the
 * config's validation took 14 ms of the main thread with it and 7 without (BENCHMARKS.md).
 * The flag is read when a schema is built, so this module is imported first by every entry
 * (program.ts, startup-snapshot.ts), before any module that builds one.
 */
z.config({ jitless: true });
