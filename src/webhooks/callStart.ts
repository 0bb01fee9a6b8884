import type { Logger } from 'pino';
import type { CallDoor } from '../tenants/CallRecordStore.js';
import type { Tenant } from '../tenants/schema.js';
import { send, SendError } from './send.js';
import { signedHeaders } from './sign.js';

/**
 * The tenant's callStart webhook: told when a call is answered, it may answer `{"variables": {…}}` for
 * the greeting and prompt templates of this call. The caller hears nothing until it answers, so the
 * whole exchange has a hard deadline; anything but a timely, well-formed 2xx leaves the call with the
 * variables it has (one warning, never the secret or the values).
 */
export interface CallStartOptions {
  /** Connect to last byte. */
  readonly timeoutMs: number;
  /** Bytes of answer kept; a longer answer is not valid JSON once cut, so it is refused. */
  readonly maxResponseBytes: number;
  /** Variables taken from one answer; the rest are dropped. */
  readonly maxVariables: number;
  /** Longest value kept, in characters; a longer one is dropped. */
  readonly maxValueChars: number;
}

export const defaultCallStartOptions = {
  /** 1.5 s (issue 19): about one ring of silence more than a call without the hook. */
  timeoutMs: 1500,
  /** 64 KiB: fifty 200-character variables are ~12 KiB of JSON; more is not an answer meant for us. */
  maxResponseBytes: 64 * 1024,
  /** 50: more than any greeting or prompt template uses, and a prompt stays a prompt. */
  maxVariables: 50,
  /** 200: a name, an account status, a short note; a prompt-sized value is the tenant's prompt's job. */
  maxValueChars: 200,
} as const satisfies CallStartOptions;

/** A variable's name as templates can name it (`{{customer.name}}`, `{{plan-tier}}`). */
export const VARIABLE_NAME = /^[A-Za-z_][\w.-]*$/;

/** What the hook is told about the call; CallRunner's AnsweredCall has this shape. */
export interface AnsweredCallInfo {
  readonly callId: string;
  readonly tenant: Tenant;
  readonly door: CallDoor;
  readonly from: string;
  readonly to: string;
  readonly variables: Readonly<Record<string, string>>;
  readonly log: Logger;
}

export interface CallStartedBody {
  readonly type: 'call.started';
  readonly callId: string;
  readonly tenantId: string;
  readonly call: { readonly door: CallDoor; readonly from: string; readonly to: string; readonly variables: Readonly<Record<string, string>> };
}

/**
 * Posts `call.started` to the tenant's callStart URL and returns the variables it answered with;
 * undefined when the tenant has no callStart webhook, or it did not answer usefully in time.
 */
export async function callStartVariables(call: AnsweredCallInfo, options: Partial<CallStartOptions> = {}): Promise<Record<string, string> | undefined> {
  const o = { ...defaultCallStartOptions, ...options };
  const hook = call.tenant.webhooks?.callStart;
  if (!hook) return undefined;
  const log = call.log;
  const body: CallStartedBody = {
    type: 'call.started',
    callId: call.callId,
    tenantId: call.tenant.id,
    call: { door: call.door, from: call.from, to: call.to, variables: call.variables },
  };
  const json = JSON.stringify(body);
  const headers = signedHeaders(call.tenant.webhooks?.secret, json);
  const host = hostOf(hook.url);
  let answer;
  try {
    answer = await send(hook.url, { method: 'POST', headers, body: json, timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes });
  } catch (err) {
    const kind = err instanceof SendError ? err.kind : 'network';
    log.warn({ host, kind, err: err instanceof Error ? err.message : String(err) }, 'callStart webhook gave no answer; the call goes on without its variables');
    return undefined;
  }
  const elapsedMs = Math.round(answer.elapsedMs);
  if (answer.status < 200 || answer.status > 299) {
    log.warn({ host, status: answer.status, elapsedMs }, 'callStart webhook answered with an error; the call goes on without its variables');
    return undefined;
  }
  if (answer.body.trim() === '') return undefined; // a 204, or "noted": nothing to add
  let parsed: unknown;
  try {
    if (answer.truncated) throw new Error('answer too long');
    parsed = JSON.parse(answer.body);
  } catch {
    log.warn({ host, status: answer.status, elapsedMs, bytes: answer.body.length, truncated: answer.truncated }, 'callStart webhook answer is not JSON; the call goes on without its variables');
    return undefined;
  }
  const given = isObject(parsed) ? parsed['variables'] : undefined;
  if (given === undefined) return undefined;
  if (!isObject(given)) {
    log.warn({ host, elapsedMs }, 'callStart webhook answer: "variables" is not an object; ignored');
    return undefined;
  }
  const { variables, dropped } = cleanVariables(given, o);
  if (dropped.length > 0) log.warn({ host, dropped: dropped.slice(0, 10), droppedCount: dropped.length }, 'callStart webhook answer: some variables dropped (bad name, value not a short string, or too many)');
  log.debug({ host, elapsedMs, variables: Object.keys(variables).length }, 'callStart webhook answered');
  return variables;
}

/** `callStartVariables` as CallRunnerDeps.callAnswered. */
export function callStartHook(options: Partial<CallStartOptions> = {}): (call: AnsweredCallInfo) => Promise<Record<string, string> | undefined> {
  return (call) => callStartVariables(call, options);
}

/**
 * Keeps names templates can use and short string values; numbers and booleans become strings. Returns
 * the names dropped (cut to 64 characters: they are the tenant's own words, never the values).
 */
export function cleanVariables(given: Record<string, unknown>, o: Pick<CallStartOptions, 'maxVariables' | 'maxValueChars'> = defaultCallStartOptions): { variables: Record<string, string>; dropped: string[] } {
  const variables: Record<string, string> = {};
  const dropped: string[] = [];
  let kept = 0;
  for (const [name, value] of Object.entries(given)) {
    const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'boolean' ? String(value) : undefined;
    // `__proto__` fits the pattern but cannot be an own key of a plain object.
    if (!VARIABLE_NAME.test(name) || name === '__proto__' || text === undefined || text.length > o.maxValueChars || kept >= o.maxVariables) {
      dropped.push(name.slice(0, 64));
      continue;
    }
    variables[name] = text;
    kept++;
  }
  return { variables, dropped };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The host alone: a URL's path or query may carry the tenant's own token. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(not a URL)';
  }
}
