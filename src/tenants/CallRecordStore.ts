import { ErrorReply } from 'redis';
import { z } from 'zod';
import type { EndReason, LatencyMark } from '../agent/events.js';
import { CallgateError, errorCatalogue, type ErrorCode } from '../errors.js';
import { rootLogger } from '../log.js';
import { keys, type Keys, type Redis } from './redisClient.js';
import { LuaScript, redisFailure, toIssues, TRANSIENT_REPLY } from './storeUtil.js';

/**
 * One record per call — answered, failed or refused — in a Redis Stream per tenant
 * (`keys(prefix).callRecords(tenantId)`), newest last, trimmed by age (XADD MINID on Redis's own clock)
 * and optionally by count. A sorted set beside it maps call id → stream time so `get()` is two O(log n)
 * reads instead of a scan of a month of calls; it is trimmed in the same script as the stream.
 *
 * Writes never wait on an outage: while Redis is unreachable records go into a bounded in-memory queue
 * (oldest dropped and counted when full) and are flushed in order once the client is ready again.
 */

// ─── The record ──────────────────────────────────────────────────────────────────────────────────

/** `room`: an AI participant of a room (its tool webhooks name it; rooms keep no call records). */
export const callDoors = ['sip', 'webrtc', 'test', 'room'] as const;
export type CallDoor = (typeof callDoors)[number];

/**
 * How the call ended: every EndReason of the agent (`closed` = the door closed the session), plus
 * `completed` (a door's own normal end), `rejected` (refused before answer: limits, call URL checks)
 * and `failed` (setup or the session broke; `error` says why).
 */
export const callOutcomes = [
  'completed',
  'caller-hangup',
  'agent-goodbye',
  'no-input',
  'max-duration',
  'provider-failure',
  'shutdown',
  'media-timeout',
  /** The caller was handed to a person (a REFER the carrier followed, or a bridge that has ended). */
  'transferred',
  /** The gateway carrying the call stopped (killed, crashed, cut off from Redis) before it ended; written by another gateway. */
  'lost',
  'closed',
  'rejected',
  /** A web call answered but whose media never connected: nothing was said and no line was used. */
  'abandoned',
  'failed',
] as const satisfies readonly (EndReason | 'completed' | 'rejected' | 'abandoned' | 'failed' | 'lost')[];
export type CallOutcome = (typeof callOutcomes)[number];

const errorCode = z.custom<ErrorCode>((v) => typeof v === 'string' && Object.hasOwn(errorCatalogue, v), 'not a callgate error code');
const ms = z.number().min(0);
const isoTime = z.iso.datetime();

/** One mark of each kind per turn; ms since the end of the caller's speech (see LatencyMark). */
const latencyMarksSchema = z.object({
  endOfTurn: ms.optional(),
  sttFinal: ms.optional(),
  llmFirstToken: ms.optional(),
  ttsFirstAudio: ms.optional(),
  firstPacketOut: ms.optional(),
} satisfies Record<LatencyMark, z.ZodType>);

export const transcriptEntrySchema = z.object({
  role: z.enum(['caller', 'agent']),
  text: z.string(),
  /** When the speaker began: ms since the session started (the caller's speech onset, the agent's first piece). */
  atMs: ms,
  /** The agent's turn counter; 0 is the greeting. Absent for keypad entries. */
  turn: z.number().int().min(0).optional(),
  /** The agent was cut off (barge-in or hang-up); `text` is what the caller heard. */
  interrupted: z.literal(true).optional(),
  /** Keypad digits rather than speech. */
  dtmf: z.literal(true).optional(),
});

export const transferRecordSchema = z.object({
  target: z.string().max(64),
  mode: z.enum(['cold', 'warm']),
  /** refer: the caller's side was asked to call the target; bridge: the gateway dialled it and joined the legs. */
  method: z.enum(['refer', 'bridge']),
  result: z.enum(['transferred', 'bridged', 'refused', 'no-answer', 'busy', 'declined', 'failed']),
  detail: z.string().max(300).optional(),
  /** When the agent asked for it: ms since the session started. */
  atMs: ms,
  /** From the request to the outcome (REFER accepted and followed, the target answering, or giving up). */
  setupMs: ms,
  /** How long the bridged legs talked, for a bridge that ended before the record was written. */
  bridgedMs: ms.optional(),
});

export const callRecordSchema = z.object({
  callId: z.string().min(1).max(256),
  tenantId: z.string().min(1).max(64),
  door: z.enum(callDoors),
  /** Caller and callee as the door saw them (SIP URI or number; a call URL slug or origin for WebRTC). */
  from: z.string().max(512),
  to: z.string().max(512),
  startedAt: isoTime,
  /** Absent when the call was never answered (rejected, or failed during setup). */
  answeredAt: isoTime.optional(),
  endedAt: isoTime,
  outcome: z.enum(callOutcomes),
  /** Why a call was rejected or failed. */
  error: z.object({ code: errorCode, message: z.string().max(1000).optional() }).optional(),
  /** Latency marks by turn, from the agent's `latency` events. */
  latency: z.array(z.object({ turn: z.number().int().min(0), marks: latencyMarksSchema })),
  /** Interruptions by the caller's voice: speech onset to the agent going quiet (the VAD's confirmation time). */
  bargeIns: z.array(z.object({ turn: z.number().int().min(0), reactionMs: ms })).optional(),
  /** A hand-over to a person the agent attempted (transfer_call): the last one, whatever its result. */
  transfer: transferRecordSchema.optional(),
  /** What was said, in order of `atMs`: final STT results, spoken agent text, keypad digits. */
  transcript: z.array(transcriptEntrySchema),
  /** The speech-to-speech model's use, when the call had one (`providers.realtime`). */
  realtime: z
    .object({
      provider: z.string().max(40),
      audioInMs: ms,
      audioOutMs: ms,
      inputTokens: z.number().int().min(0),
      outputTokens: z.number().int().min(0),
      responses: z.number().int().min(0),
      reconnects: z.number().int().min(0),
      /** The model was gone for good and the cascade answered the rest of the call. */
      fellBack: z.boolean(),
    })
    .optional(),
  /** Provider and session errors the agent reported during the call (codes only; messages stay in logs). */
  errors: z
    .array(z.object({ code: errorCode, during: z.enum(['stt', 'llm', 'tts', 'greeting', 'session']), atMs: ms }))
    .optional(),
});

export type CallRecord = z.output<typeof callRecordSchema>;
export type TranscriptEntry = z.output<typeof transcriptEntrySchema>;
export type TransferRecord = z.output<typeof transferRecordSchema>;

// ─── Options ─────────────────────────────────────────────────────────────────────────────────────

export interface CallRecordStoreOptions {
  /** Key prefix, as for `connectRedis`. */
  readonly prefix: string;
  /** Records older than this (by the time Redis stored them) are trimmed on the tenant's next write. Fractions allowed. */
  readonly retentionDays: number;
  /** Newest records a tenant keeps regardless of age; 0 = no cap. */
  readonly maxPerTenant: number;
  /** Trim exactly instead of by whole stream nodes (`~`). Costlier; for tests and tiny caps. */
  readonly exactTrim: boolean;
  /** Records held in memory while Redis is unreachable; beyond it the oldest is dropped and counted. */
  readonly maxQueued: number;
  /** Longest one Redis command may take before the record is queued instead. */
  readonly commandTimeoutMs: number;
  /** Retry of a stuck queue: first delay, doubling up to the cap (the client's 'ready' event retries at once). */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** How long `close()` keeps trying to flush the queue. */
  readonly closeTimeoutMs: number;
  /**
   * An answered call's snapshot in Redis (see `track()`) lives this long unless renewed; once it lapses,
   * any gateway's `reapLost()` writes it as the call's record with outcome `lost`.
   */
  readonly openCallTtlMs: number;
}

export const defaultCallRecordStoreOptions = {
  prefix: 'callgate:',
  /** 30 days: long enough to answer "what happened on my call last week"; older history belongs in an export. */
  retentionDays: 30,
  /** Off: age decides. Set it when one tenant's volume could fill Redis's memory. */
  maxPerTenant: 0,
  /** `~`: Redis drops whole stream nodes (~100 entries), so trimming costs nothing measurable per write. */
  exactTrim: false,
  /**
   * 10 000 records: a few minutes of a busy gateway's calls, tens of MB at a few KB per record — an outage
   * longer than that loses the oldest records rather than the process.
   */
  maxQueued: 10_000,
  /** 1 s, as for the call limiter: a healthy loopback Redis answers in well under 1 ms. */
  commandTimeoutMs: 1000,
  /** 250 ms doubling to 5 s: the client's own reconnect (≤ 2 s backoff) usually wins, and 'ready' flushes. */
  retryBaseMs: 250,
  retryMaxMs: 5000,
  /** 2 s: a shutdown should not hang on a Redis that is gone. */
  closeTimeoutMs: 2000,
  /**
   * 30 s, the call limiter's lease: a killed gateway's calls free their lines and get their records at
   * about the same time, and a snapshot renewed every 10 s survives two missed renewals.
   */
  openCallTtlMs: 30_000,
} as const satisfies CallRecordStoreOptions;

export interface CallRecordPage {
  /** Newest first. */
  readonly records: CallRecord[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: string;
}

export interface CallRecordStoreStats {
  /** Records waiting in memory for Redis. */
  readonly queued: number;
  /** Records lost: queue overflow, Redis refusing them, or still queued when `close()` gave up. */
  readonly dropped: number;
  /** Records Redis has. */
  readonly written: number;
}

export type WriteResult = 'written' | 'queued' | 'dropped';

// ─── Lua ─────────────────────────────────────────────────────────────────────────────────────────

/**
 * KEYS: stream, index. ARGV: callId, record JSON, retentionMs, maxPerTenant (0 = none), trim ('=' or '~').
 * Returns the stream id, or the stored one's time when the call id is already recorded: a write whose
 * reply was lost (timeout) and is sent again must not record the call twice.
 *
 * Stream ids come from Redis's clock (`*`), so retention is cut on the same clock (TIME), not the
 * gateway's. The index is a sorted set (call id scored by stream ms) because hash fields cannot expire
 * on Redis 7.0; after trimming, index entries older than the stream's first entry go too.
 */
const WRITE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The call has its record: it is no longer open (a no-op for calls never tracked).
redis.call('ZREM', KEYS[3], ARGV[6])
redis.call('HDEL', KEYS[4], ARGV[6])
local known = redis.call('ZSCORE', KEYS[2], ARGV[1])
if known then
  -- A 'lost' record written for a gateway that was only cut off gives way to the real one.
  if ARGV[7] == 'lost' or redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 then return known end
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], known, known)) do
    for i = 1, #e[2], 2 do
      if e[2][i] == 'callId' and e[2][i + 1] == ARGV[1] then redis.call('XDEL', KEYS[1], e[1]) end
    end
  end
  redis.call('SREM', KEYS[5], ARGV[1])
end
local retention = tonumber(ARGV[3])
local id = redis.call('XADD', KEYS[1], 'MINID', ARGV[5], string.format('%d', now - retention), '*', 'callId', ARGV[1], 'record', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[5], ARGV[4]) end
redis.call('ZADD', KEYS[2], string.match(id, '^(%d+)'), ARGV[1])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.match(first[1], '^(%d+)')) end
if ARGV[7] == 'lost' then
  redis.call('SADD', KEYS[5], ARGV[1])
  redis.call('PEXPIRE', KEYS[5], retention)
end
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[2], retention)
return id`;

/**
 * KEYS: open set, open snapshots. ARGV: member, snapshot JSON, ttlMs. An answered call's latest
 * snapshot, kept until its record is written (WRITE removes it) or it lapses (REAP).
 */
const TRACK = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`;

/**
 * KEYS: open set, open snapshots. ARGV: max. Takes (removes and returns) up to `max` snapshots whose
 * time lapsed, on Redis's clock. Atomic, so two gateways reaping at once never write a call twice.
 */
const REAP = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, m in ipairs(lapsed) do
  local snapshot = redis.call('HGET', KEYS[2], m)
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
  if snapshot then table.insert(out, snapshot) end
end
return out`;

const writeScript = new LuaScript(WRITE);
const trackScript = new LuaScript(TRACK);
const reapScript = new LuaScript(REAP);

const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
/** Both halves of a stream id are unsigned 64-bit integers. */
const U64_MAX = 2n ** 64n - 1n;

/**
 * Why `before` is no cursor this store could have given, or undefined. Checked before Redis sees it:
 * XREVRANGE refuses `(0-0` and halves past 2^64-1 with an error reply, which is the client's mistake,
 * not an outage.
 */
export function cursorProblem(before: string): string | undefined {
  const m = STREAM_ID.exec(before);
  if (!m) return 'must look like <ms>-<seq> (digits-digits)';
  if (BigInt(m[1]!) > U64_MAX || BigInt(m[2]!) > U64_MAX) return 'is out of range (each half at most 2^64-1)';
  // Nothing precedes 0-0: no page ever ends there.
  if (BigInt(m[1]!) === 0n && BigInt(m[2]!) === 0n) return 'cannot be 0-0, which precedes every record';
  return undefined;
}
const MAX_PAGE = 500;

interface Pending {
  readonly tenantId: string;
  readonly callId: string;
  readonly json: string;
  /** Written by `reapLost()`: the real record, should it come after all, replaces it. */
  readonly lost: boolean;
}

/** Open calls of every tenant share one set: the reaper must find them without knowing the tenants. */
const openMember = (tenantId: string, callId: string): string => `${tenantId}\n${callId}`;

type SendResult = 'written' | 'retry' | 'refused';

const log = rootLogger.child({ component: 'call-records' });

export class CallRecordStore {
  readonly options: CallRecordStoreOptions;
  private readonly keys: Keys;
  private readonly retentionMs: number;
  // A plain array: shift() on 10 000 entries is a memmove of pointers, not worth a ring buffer.
  private readonly queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private inFlight: Pending | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private closing: Promise<CallRecordStoreStats> | undefined;
  private counts = { dropped: 0, written: 0 };
  private readonly onReady = (): void => {
    this.clearRetry();
    void this.flush();
  };

  constructor(
    private readonly redis: Redis,
    options: Partial<CallRecordStoreOptions> = {},
  ) {
    this.options = { ...defaultCallRecordStoreOptions, ...options };
    const o = this.options;
    this.retentionMs = Math.round(o.retentionDays * 86_400_000);
    if (!(this.retentionMs >= 1)) {
      throw new CallgateError('CG_CONFIG_INVALID', 'retentionDays must be positive', { details: { retentionDays: o.retentionDays } });
    }
    for (const name of ['maxPerTenant', 'maxQueued'] as const) {
      if (!Number.isInteger(o[name]) || o[name] < 0) {
        throw new CallgateError('CG_CONFIG_INVALID', `${name} must be a non-negative integer`, { details: { [name]: o[name] } });
      }
    }
    this.keys = keys(o.prefix);
    this.retryDelayMs = o.retryBaseMs;
    redis.on('ready', this.onReady);
  }

  /**
   * Stores a record: at once when Redis answers, else queued (in order, behind anything already queued).
   * Rejects only for a record that fails validation (CG_CALL_RECORD_INVALID) — an outage never reaches
   * the call that is ending.
   */
  private readonly observers: ((record: CallRecord) => void)[] = [];

  /** Sees every valid record as it is written (metrics count calls by door and outcome from them). */
  observe(observer: (record: CallRecord) => void): void {
    this.observers.push(observer);
  }

  async write(record: CallRecord): Promise<WriteResult> {
    const parsed = callRecordSchema.safeParse(record);
    if (!parsed.success) {
      const issues = toIssues(parsed.error);
      throw new CallgateError('CG_CALL_RECORD_INVALID', `${issues[0]?.path || '(root)'} ${issues[0]?.message ?? ''}`, {
        details: { callId: record.callId, issues },
      });
    }
    for (const observer of this.observers) observer(parsed.data);
    const item: Pending = { tenantId: parsed.data.tenantId, callId: parsed.data.callId, json: JSON.stringify(parsed.data), lost: parsed.data.outcome === 'lost' };
    if (this.closing) {
      this.drop(item, 'store closed');
      return 'dropped';
    }
    // Keep order: once anything is queued, new records line up behind it.
    if (this.queue.length > 0 || this.flushing) {
      this.enqueue(item);
      void this.flush();
      return 'queued';
    }
    const result = await this.send(item);
    if (result === 'written') return 'written';
    if (result === 'refused') return 'dropped';
    this.enqueue(item);
    this.scheduleRetry();
    return 'queued';
  }

  /**
   * Keeps an answered call's record-so-far in Redis (outcome `lost`, ended now) until its real record
   * is written. The CallRecorder renews it every third of `openCallTtlMs`, so the snapshot's transcript
   * is at most that old. Best effort: an outage only means a crash during it would lose the record.
   */
  async track(snapshot: CallRecord): Promise<void> {
    if (this.closing) return;
    const member = openMember(snapshot.tenantId, snapshot.callId);
    try {
      await this.script(trackScript, [this.keys.openCalls(), this.keys.openCallSnapshots()], [member, JSON.stringify(snapshot), String(this.options.openCallTtlMs)]);
    } catch (err) {
      log.debug({ tenant: snapshot.tenantId, callId: snapshot.callId, err: err instanceof Error ? err.message : String(err) }, 'open call snapshot not written');
    }
  }

  /**
   * Writes the records of calls whose gateway stopped renewing their snapshot (killed, crashed): each
   * as its last snapshot, outcome `lost`, error CG_CALL_LOST. Every gateway runs it now and then; the
   * take is atomic, so each lost call is written once. Resolves with how many were written or queued.
   */
  async reapLost(max = 100): Promise<number> {
    if (this.closing) return 0;
    const taken = (await this.script(reapScript, [this.keys.openCalls(), this.keys.openCallSnapshots()], [String(max)]).catch((err: unknown) => {
      log.debug({ err: err instanceof Error ? err.message : String(err) }, 'lost-call reaping skipped');
      return [];
    })) as string[];
    let written = 0;
    for (const json of taken) {
      let snapshot: unknown;
      try {
        snapshot = JSON.parse(json);
      } catch {
        snapshot = undefined;
      }
      const record = callRecordSchema.safeParse(snapshot);
      if (!record.success) {
        log.warn('unreadable open-call snapshot dropped');
        continue;
      }
      log.warn({ tenant: record.data.tenantId, callId: record.data.callId }, 'call lost with its gateway; writing its last snapshot as its record');
      if ((await this.write({ ...record.data, outcome: 'lost', error: { code: 'CG_CALL_LOST' } })) !== 'dropped') written++;
    }
    return written;
  }

  /** A tenant's records, newest first (by when Redis stored them). `before` is the `next` of the previous page. */
  async list(tenantId: string, options: { before?: string; limit?: number } = {}): Promise<CallRecordPage> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new CallgateError('CG_CALL_RECORD_INVALID', `limit must be an integer from 1 to ${MAX_PAGE}`, { details: { limit } });
    }
    if (options.before !== undefined) {
      const problem = cursorProblem(options.before);
      if (problem) throw new CallgateError('CG_CALL_RECORD_INVALID', `before ${problem}; pass the \`next\` of a previous page`, { details: { reason: problem } });
    }
    const end = options.before === undefined ? '+' : `(${options.before}`;
    // One more than asked: tells whether another page exists without a second round trip.
    const reply = await this.command(['XREVRANGE', this.keys.callRecords(tenantId), end, '-', 'COUNT', String(limit + 1)], 'list', tenantId);
    const entries = (reply as [string, string[]][]).slice(0, limit);
    const records = entries.map(([id, fields]) => this.decode(tenantId, id, fields)).filter((r): r is CallRecord => r !== undefined);
    const last = entries.at(-1);
    return (reply as unknown[]).length > limit && last ? { records, next: last[0] } : { records };
  }

  /** One call's record; CG_CALL_RECORD_NOT_FOUND when there is none (or it is past retention). */
  async get(tenantId: string, callId: string): Promise<CallRecord> {
    const score = await this.command(['ZSCORE', this.keys.callRecordIndex(tenantId), callId], 'get', tenantId);
    if (score !== null && score !== undefined) {
      const msPart = String(score);
      // Several records can share a millisecond; the callId field picks ours.
      const reply = await this.command(['XRANGE', this.keys.callRecords(tenantId), msPart, msPart], 'get', tenantId);
      for (const [id, fields] of reply as [string, string[]][]) {
        if (field(fields, 'callId') !== callId) continue;
        const record = this.decode(tenantId, id, fields);
        if (record) return record;
      }
    }
    throw new CallgateError('CG_CALL_RECORD_NOT_FOUND', `call ${callId}`, { details: { tenantId, callId } });
  }

  stats(): CallRecordStoreStats {
    return { queued: this.queue.length, ...this.counts };
  }

  /**
   * Stops retrying and makes a last attempt to flush the queue, for at most `timeoutMs`; what is still
   * queued then is dropped (counted and logged). Idempotent. Leaves the Redis client to its owner.
   */
  close(timeoutMs: number = this.options.closeTimeoutMs): Promise<CallRecordStoreStats> {
    this.closing ??= (async () => {
      this.clearRetry();
      this.redis.off('ready', this.onReady);
      const deadline = performance.now() + timeoutMs;
      while (this.queue.length > 0 || this.flushing) {
        await this.flush();
        const left = deadline - performance.now();
        if (this.queue.length === 0 || left <= 0) break;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, left)));
      }
      if (this.queue.length > 0) {
        log.error({ lost: this.queue.length }, 'call records still queued at close are lost');
        this.counts.dropped += this.queue.length;
        this.queue.length = 0;
      }
      return this.stats();
    })();
    return this.closing;
  }

  // ─── Internals ─────────────────────────────────────────────────────────────────────────────────

  private flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
      // A record queued while the last send was finishing would otherwise wait for the next trigger.
      if (this.queue.length > 0 && !this.retryTimer && !this.closing) void this.flush();
    });
    return this.flushing;
  }

  /** Sends the queue head by head; a record leaves the queue only once Redis has it, so stats() never hides one. */
  private async drain(): Promise<void> {
    for (let item = this.queue[0]; item; item = this.queue[0]) {
      this.inFlight = item;
      const result = await this.send(item);
      this.inFlight = undefined;
      if (result === 'retry') {
        this.scheduleRetry();
        return;
      }
      if (this.queue[0] === item) this.queue.shift();
    }
    this.retryDelayMs = this.options.retryBaseMs;
  }

  private async send(item: Pending): Promise<SendResult> {
    const k = this.keys;
    const scriptKeys = [k.callRecords(item.tenantId), k.callRecordIndex(item.tenantId), k.openCalls(), k.openCallSnapshots(), k.lostCalls(item.tenantId)];
    const args = [
      item.callId,
      item.json,
      String(this.retentionMs),
      String(this.options.maxPerTenant),
      this.options.exactTrim ? '=' : '~',
      openMember(item.tenantId, item.callId),
      item.lost ? 'lost' : '',
    ];
    try {
      await this.script(writeScript, scriptKeys, args);
      this.counts.written++;
      return 'written';
    } catch (err) {
      if (err instanceof ErrorReply && !TRANSIENT_REPLY.test(err.message)) {
        // Retrying a reply like WRONGTYPE would block the queue behind this record for ever.
        log.error({ tenant: item.tenantId, callId: item.callId, err: err.message }, 'Redis refused a call record; dropped');
        this.counts.dropped++;
        return 'refused';
      }
      const message = err instanceof Error ? err.message : String(err);
      log.debug({ tenant: item.tenantId, callId: item.callId, err: message }, 'call record write failed; queued');
      return 'retry';
    }
  }

  private enqueue(item: Pending): void {
    this.queue.push(item);
    this.trimQueue();
  }

  private trimQueue(): void {
    while (this.queue.length > this.options.maxQueued) {
      // The head may be on its way to Redis; dropping it would count a record that arrives as lost.
      const at = this.queue[0] === this.inFlight && this.queue.length > 1 ? 1 : 0;
      this.drop(this.queue.splice(at, 1)[0]!, 'queue full');
    }
  }

  private drop(item: Pending, why: string): void {
    this.counts.dropped++;
    log.warn({ tenant: item.tenantId, callId: item.callId, dropped: this.counts.dropped }, `call record dropped: ${why}`);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.options.retryMaxMs, this.retryDelayMs * 2);
    // Unref'd: a queue waiting for Redis must not keep the process alive; close() does the last flush.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, delay).unref();
  }

  private clearRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Runs a script with the store's command timeout: an outage queues the record rather than hanging the call's end. */
  private script(script: LuaScript, scriptKeys: string[], args: string[]): Promise<unknown> {
    return script.run(this.redis, scriptKeys, args, { timeoutMs: this.options.commandTimeoutMs });
  }

  private async command(args: string[], what: string, tenantId: string): Promise<unknown> {
    try {
      return await this.redis.sendCommand(args, { timeout: this.options.commandTimeoutMs });
    } catch (err) {
      // Only an outage is CG_REDIS_UNAVAILABLE: a client following the codes would retry anything else for ever.
      throw redisFailure(err, `call records ${what}`, { invalidCode: 'CG_CALL_RECORD_INVALID', details: { tenantId } });
    }
  }

  private decode(tenantId: string, id: string, fields: string[]): CallRecord | undefined {
    try {
      return callRecordSchema.parse(JSON.parse(field(fields, 'record') ?? ''));
    } catch {
      // A record this version cannot read must not hide the rest of the page.
      log.warn({ tenant: tenantId, streamId: id }, 'unreadable call record skipped');
      return undefined;
    }
  }
}

/** A field of a stream entry (node-redis hands raw XRANGE replies over as a flat [name, value, …] list). */
function field(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
