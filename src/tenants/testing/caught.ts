import { CallgateError } from '../../errors.js';

/** The CallgateError a promise rejects with; anything else (or no rejection) fails the test. */
export async function caught(p: Promise<unknown>): Promise<CallgateError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CallgateError) return err;
    throw err;
  }
  throw new Error('expected a CallgateError');
}
