import type { AgentSession } from './AgentSession.js';

/**
 * The agent sessions a door is running, so that a gateway shutting down can have each say goodbye and
 * hang up rather than cut the line.
 */
export class LiveSessions {
  private readonly sessions = new Set<AgentSession>();

  /** Tracks `session` until it ends. */
  add(session: AgentSession): void {
    this.sessions.add(session);
    void session.ended.finally(() => this.sessions.delete(session));
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Every session says its tenant's shutdown message and hangs up; returns how many were asked. */
  shutdownAll(): number {
    for (const s of this.sessions) s.shutdown();
    return this.sessions.size;
  }
}
