import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { CallgateError, errorCatalogue, type ErrorCode } from '../errors.js';
import type { Redis } from './redisClient.js';

/** One zod problem as the API returns it: `path` as a dotted string (`intents.0.dtmf`) and the message. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

export function toIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
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

/** Drops undefined fields so a JSON round trip gives back an equal object. */
export function compact<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}
