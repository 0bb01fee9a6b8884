import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { build as prettyStream } from 'pino-pretty';

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
 * How log lines look: `pretty` (one readable line each: time, level, call id and tenant, message, the
 * rest as key=value) when they go to a terminal, `json` (one object per line, what log collectors
 * parse) when they go anywhere else. `LOG_FORMAT=json|pretty` chooses.
 */
export function logFormat(env: NodeJS.ProcessEnv, tty: boolean): 'json' | 'pretty' {
  const chosen = env['LOG_FORMAT'];
  if (chosen === 'json' || chosen === 'pretty') return chosen;
  return tty ? 'pretty' : 'json';
}

/** The terminal form: `17:58:24.291 INFO  web-0a65… demo │ agent session ended reason=caller-hangup`. */
export function prettyLogStream(fd: 1 | 2 | NodeJS.WritableStream, colorize: boolean): DestinationStream {
  return prettyStream({
    destination: fd as never,
    sync: true,
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // Who and where are in the prefix or not needed on a terminal; the call's ids lead the message.
    ignore: 'pid,hostname,name,callId,tenant',
    messageFormat: (log, messageKey) => {
      const who = [log['callId'], log['tenant']].filter((v) => typeof v === 'string' && v !== '').join(' ');
      const msg = String(log[messageKey] ?? '');
      return who ? `${who} │ ${msg}` : msg;
    },
  });
}

/**
 * Where the root logger writes: stdout (the default, what process managers collect) or stderr
 * (`LOG_DESTINATION=stderr`: benchmarks, whose stdout ends with one JSON object a script reads).
 */
function destination(env: NodeJS.ProcessEnv = process.env): DestinationStream {
  const fd = env['LOG_DESTINATION'] === 'stderr' ? 2 : 1;
  const tty = (fd === 2 ? process.stderr : process.stdout).isTTY === true;
  if (logFormat(env, tty) === 'pretty') return prettyLogStream(fd, tty);
  return pino.destination({ dest: fd, sync: true });
}

export const rootLogger: Logger = pino(loggerOptions, destination());

/** A logger with the process's options writing to `destination` (tests read what would be logged). */
export function loggerTo(destination: DestinationStream, level = 'info'): Logger {
  return pino({ ...loggerOptions, level }, destination);
}

/**
 * A child of `parent` carrying the call's bindings. Keys the parent already binds to the same value are
 * left out: pino writes every binding of every generation, so a session logger made from the door's
 * call logger would print `callId` and `tenant` twice on each line.
 */
export function callLogger(bindings: { callId: string; legId?: string; tenant?: string }, parent: Logger = rootLogger): Logger {
  const have = parent.bindings();
  const fresh = Object.fromEntries(Object.entries(bindings).filter(([k, v]) => v !== undefined && have[k] !== v));
  return Object.keys(fresh).length > 0 ? parent.child(fresh) : parent;
}
