import type { Logger } from 'pino';

/**
 * The last line of defence for a process carrying many calls. Every promise and timer that belongs to
 * a call is owned by that call's scope (src/call/CallScope.ts), so a rejection should never get this
 * far; when one does anyway it is a bug, and Node's default (exit on an unhandled rejection) would
 * turn that one call's bug into every caller's dropped call. It is logged at error level with its
 * stack instead, and counted, so it is seen and fixed. Thrown exceptions are not caught here: after
 * one, the process's state is unknown, and a supervisor restart is the safe answer.
 */
export function installProcessGuards(logger: Logger): { readonly unhandledRejections: () => number } {
  let count = 0;
  process.on('unhandledRejection', (reason: unknown) => {
    count += 1;
    const err = reason instanceof Error ? { message: reason.message, name: reason.name, stack: reason.stack } : { message: String(reason) };
    logger.error({ err, unhandledRejections: count }, 'unhandled promise rejection (a bug: it escaped its call); the process goes on');
  });
  return { unhandledRejections: () => count };
}
