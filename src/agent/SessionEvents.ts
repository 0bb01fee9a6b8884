import type { Logger } from 'pino';
import { CallgateError, isCallgateError, type ErrorCode } from '../errors.js';
import type { AgentEvent, LatencyMark } from './events.js';

// The global `performance` (the same clock as node:perf_hooks), so tests can fake it.
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event as a piece of the session reports it; the clock (`atMs`) is added here. */
export type AgentEventInput = DistributiveOmit<AgentEvent, 'atMs'>;

export type ErrorDuring = Extract<AgentEvent, { type: 'error' }>['during'];

/**
 * The session's event stream and its clock: every piece reports through one of these, so every event
 * carries `atMs` on the same monotonic timeline and each latency mark of a turn is reported once.
 */
export class SessionEvents {
  readonly startedAt = performance.now();
  /** The last speech frame of the latest caller turn (latency marks are measured from it). */
  private speechEndAt = 0;
  private marksPending = new Set<LatencyMark>();

  constructor(
    private readonly sink: (event: AgentEvent) => void,
    private readonly log: Logger,
    /** The turn a latency mark belongs to: the latest one when it is reported. */
    private readonly currentTurn: () => number,
  ) {}

  emit(event: AgentEventInput, now = performance.now()): void {
    this.sink({ ...event, atMs: now - this.startedAt } as AgentEvent);
  }

  /** `at` on the session's clock (ms since it started). */
  rel(at: number): number {
    return at - this.startedAt;
  }

  /** A turn ended at `speechEndAt`: each of `marks` is reported the first time it is reached. */
  expectMarks(speechEndAt: number, marks: readonly LatencyMark[]): void {
    this.speechEndAt = speechEndAt;
    this.marksPending = new Set(marks);
  }

  /** The turn will get no answer: its remaining marks are not reported. */
  clearMarks(): void {
    this.marksPending.clear();
  }

  mark(mark: LatencyMark): void {
    if (!this.marksPending.delete(mark)) return;
    const now = performance.now();
    this.emit({ type: 'latency', turn: this.currentTurn(), mark, sinceSpeechEndMs: now - this.speechEndAt }, now);
  }

  /** A failure the call survives: logged and reported as an `error` event. */
  error(err: unknown, during: ErrorDuring, fallback: ErrorCode): void {
    const e = isCallgateError(err) ? err : new CallgateError(fallback, err instanceof Error ? err.message : String(err), { cause: err });
    this.log.warn({ code: e.code, during, err: e.message }, 'agent provider error; the call goes on');
    this.emit({ type: 'error', code: e.code, message: e.message, during });
  }
}
