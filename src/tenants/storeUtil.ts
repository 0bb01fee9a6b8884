import { createHash } from 'node:crypto';
import { ClientClosedError, ClientOfflineError, ConnectionTimeoutError, ErrorReply, SocketClosedUnexpectedlyError, SocketTimeoutError, TimeoutError } from 'redis';
import type { z } from 'zod';
import { CallgateError, errorCatalogue, type ErrorCode } from '../errors.js';
import type { Redis } from './redisClient.js';

/** One zod problem as the API returns it: `path` as a dotted string (`intents.0.dtmf`) and the message. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/** Said of a key an object does not have (a typo, or a field of another version). */
export const UNKNOWN_FIELD = 'is not a known field';

/**
 * zod's issues with one entry per unknown key, at that key's own path (`turn.bargein`): zod reports them
 * together at the object's path, which names the object but not the typo.
 */
export function zodIssues(error: z.ZodError): { path: PropertyKey[]; message: string }[] {
  return error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' ? i.keys.map((key) => ({ path: [...i.path, key], message: UNKNOWN_FIELD })) : [{ path: i.path, message: i.message }],
  );
}

export function toIssues(error: z.ZodError): ValidationIssue[] {
  return zodIssues(error).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** Parses with `schema` or throws CG_TENANT_INVALID listing every issue (path + message). */
/** `code`: CG_TENANT_INVALID for the stores' records; a route parsing its own request body names its own. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, code: ErrorCode = 'CG_TENANT_INVALID'): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toIssues(result.error);
  const first = issues[0];
  throw new CallgateError(code, `${what}: ${first ? `${first.path || '(root)'} ${first.message}` : 'invalid'}`, {
    details: { issues },
  });
}

export function invalid(what: string, path: string, message: string): CallgateError {
  return new CallgateError('CG_TENANT_INVALID', `${what}: ${path} ${message}`, { details: { issues: [{ path, message }] } });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deepest object nesting a patch may have: the data model nests four levels, so 32 refuses no real patch. */
export const MAX_PATCH_DEPTH = 32;

/**
 * JSON Merge Patch (RFC 7396): objects merge key by key, `null` removes a field, anything else
 * (arrays included) replaces. The usual meaning of PATCH, so API clients need no new rules.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  return mergeAt(target, patch, 0);
}

function mergeAt(target: unknown, patch: unknown, depth: number): unknown {
  if (!isPlainObject(patch)) return patch;
  // A body nested thousands deep would otherwise recurse until the stack overflows (a 500).
  if (depth >= MAX_PATCH_DEPTH) throw invalid('patch', '(body)', `nests objects deeper than ${MAX_PATCH_DEPTH} levels`);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = mergeAt(out[k], v, depth + 1);
  }
  return out;
}

/**
 * A Lua script run by SHA (EVALSHA) with a fallback to EVAL when Redis has not seen it (after a restart
 * or SCRIPT FLUSH): the text travels once per connection lifetime instead of on every call.
 */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** `timeoutMs`: the longest each command may wait (including for a reconnecting client) before it fails. */
  async run(client: Redis, keys: string[], args: string[], options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (options.timeoutMs === undefined) {
      try {
        return await client.evalSha(this.sha, { keys, arguments: args });
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return client.eval(this.source, { keys, arguments: args });
      }
    }
    const opts = { timeout: options.timeoutMs };
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(['EVALSHA', this.sha, ...tail], opts);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.sendCommand(['EVAL', this.source, ...tail], opts);
    }
  }
}

/**
 * Scripts report expected refusals as `{err = 'CG_…'}` replies; this turns one into a CallgateError
 * and leaves real Redis errors alone.
 */
export function scriptError(err: unknown, detail: (code: ErrorCode) => string | undefined): unknown {
  if (err instanceof Error) {
    const code = /^(?:ERR )?(CG_[A-Z_]+)/.exec(err.message)?.[1];
    if (code && Object.hasOwn(errorCatalogue, code)) return new CallgateError(code as ErrorCode, detail(code as ErrorCode));
  }
  return err;
}

/** Replies Redis gives while it cannot serve now but will (loading, a failover, out of memory): an outage. */
export const TRANSIENT_REPLY = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF)/;
/** Redis refusing an argument of the command ("ERR invalid start ID for the interval", "ERR value is not an integer"). */
const ARGUMENT_REPLY = /^ERR .*\b(invalid|not an integer|out of range|syntax)/i;

/**
 * What a failed Redis command means for the caller, so a client error is never reported as an outage
 * (a client told "retryable" retries for ever):
 * - no answer (disconnected, timed out, closed) or a transient reply → CG_REDIS_UNAVAILABLE (503, retryable);
 * - Redis refusing an argument → `invalidCode` (a 4xx: the request carried it) when given;
 * - any other reply (WRONGTYPE: data Redis holds is not what this code wrote), or what Redis gave back
 *   failing to parse (SyntaxError, TypeError) → CG_INTERNAL (500, not retryable).
 * A CallgateError passes through unchanged. Errors of other kinds count as an outage: the client's
 * connection errors have several classes, and calling one of them a bug would stop TenantCache from
 * serving its copy through the outage.
 */
export function redisFailure(err: unknown, what: string, options: { invalidCode?: ErrorCode; details?: Record<string, unknown> } = {}): CallgateError {
  if (err instanceof CallgateError) return err;
  const details = options.details;
  const opts = details ? { details, cause: err } : { cause: err };
  if (err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError) {
    return new CallgateError('CG_INTERNAL', `${what}: unreadable data`, opts);
  }
  if (err instanceof ErrorReply && !TRANSIENT_REPLY.test(err.message)) {
    if (options.invalidCode && ARGUMENT_REPLY.test(err.message)) return new CallgateError(options.invalidCode, `${what}: Redis refused an argument`, opts);
    return new CallgateError('CG_INTERNAL', `${what}: Redis refused the command`, opts);
  }
  return new CallgateError('CG_REDIS_UNAVAILABLE', `${what} failed`, opts);
}

/**
 * Whether `err` is the Redis client saying Redis cannot be reached now (offline, closed, timed out),
 * for layers above the stores (the HTTP error handler) that see a store's raw failure: an outage is a
 * 503 a client may retry, never a 500.
 */
export function isRedisOutage(err: unknown): boolean {
  return [ClientOfflineError, ClientClosedError, SocketClosedUnexpectedlyError, ConnectionTimeoutError, SocketTimeoutError, TimeoutError].some((kind) => err instanceof kind);
}

/** Drops undefined fields so a JSON round trip gives back an equal object. */
export function compact<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}
