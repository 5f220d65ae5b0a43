import { SafeRunError } from '../../src/errors.js';

/** The SafeRunError a promise rejects with; fails the test on success or on any other error. */
export async function rejection(promise: Promise<unknown>): Promise<SafeRunError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SafeRunError) return error;
    throw error;
  }
  throw new Error('expected a SafeRunError');
}
