import { pino, type Logger } from 'pino';

/**
 * The process's root logger. Call-related code logs through `callLogger` so every line carries the call
 * id (and, once tenants exist, the tenant). Caller audio, transcripts and secrets never go into a log.
 */
export const rootLogger: Logger = pino({
  name: 'callgate',
  level: process.env['LOG_LEVEL'] ?? (process.env['VITEST'] ? 'silent' : 'info'),
});

export function callLogger(bindings: { callId: string; legId?: string; tenant?: string }, parent: Logger = rootLogger): Logger {
  return parent.child(bindings);
}
