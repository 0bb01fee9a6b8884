import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * The process's root logger. Call-related code logs through `callLogger` so every line carries the call
 * id (and, once tenants exist, the tenant). Caller audio, transcripts and secrets never go into a log.
 */
export const loggerOptions: LoggerOptions = {
  name: 'callgate',
  level: process.env['LOG_LEVEL'] ?? (process.env['VITEST'] ? 'silent' : 'info'),
  // A safety net, not the rule: code does not log keys. If an options object or a request's headers
  // ever reach a log line, the secrets in them are censored.
  redact: {
    paths: ['apiKey', '*.apiKey', 'providerKeys', '*.providerKeys', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', '*.headers["xi-api-key"]'],
    censor: '[redacted]',
  },
};

/**
 * Where the root logger writes: stdout (the default, what process managers collect) or stderr
 * (`LOG_DESTINATION=stderr`: benchmarks, whose stdout ends with one JSON object a script reads).
 */
function destination(env: NodeJS.ProcessEnv = process.env): DestinationStream {
  return pino.destination({ dest: env['LOG_DESTINATION'] === 'stderr' ? 2 : 1, sync: true });
}

export const rootLogger: Logger = pino(loggerOptions, destination());

/** A logger with the process's options writing to `destination` (tests read what would be logged). */
export function loggerTo(destination: DestinationStream, level = 'info'): Logger {
  return pino({ ...loggerOptions, level }, destination);
}

export function callLogger(bindings: { callId: string; legId?: string; tenant?: string }, parent: Logger = rootLogger): Logger {
  return parent.child(bindings);
}
