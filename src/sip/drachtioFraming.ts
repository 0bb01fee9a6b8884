import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * Keeps a broken drachtio link from taking the process down.
 *
 * drachtio-server writes each message to its app without waiting for the previous write to finish, so a
 * message over 64 KB can reach us in pieces with other messages between them (drachtio-server PR #361,
 * drachtio-srf #210, both open). drachtio-srf's client then finds no length prefix where it expects one
 * and throws from its socket's 'data' handler: an uncaught exception, fatal to every call on the
 * process. One oversized INVITE over SIP/TCP, from anyone, before any check of ours, was enough in
 * about one try in three (tests/sip/torture.test.ts).
 *
 * There is no hook for it in drachtio-srf, so this wraps its WireProtocol's data handler (client side
 * only; its server side already closes the socket). On a throw the socket is destroyed: the stream's
 * framing is lost anyway, and drachtio-srf reconnects as after any dropped link (calls in progress keep
 * their media; tests/sip/faults.test.ts restarts drachtio under a call). Checked against drachtio-srf
 * 5.0.x; when its internals differ, nothing is patched and `installDrachtioFramingGuard` says so.
 */

interface WireProtocolLike {
  readonly isServer: unknown;
  readonly host?: string;
  readonly port?: number;
  readonly mapIncomingMsg?: Map<Socket, unknown>;
  _onData(socket: Socket, msg: Buffer): void;
}

export interface FramingError {
  readonly drachtio: string;
  readonly message: string;
}

/** Every framing error the guard recovered from, in this process. */
export const drachtioFramingErrors = new EventEmitter<{ recovered: [FramingError] }>();

const PATCHED = Symbol.for('callgate.drachtioFramingGuard');

/** Idempotent. Returns false when drachtio-srf's WireProtocol is not the shape this was written for. */
export function installDrachtioFramingGuard(): boolean {
  const require = createRequire(import.meta.url);
  let WireProtocol: { prototype: WireProtocolLike & { [PATCHED]?: true } };
  try {
    WireProtocol = require('drachtio-srf/lib/wire-protocol.js') as typeof WireProtocol;
  } catch {
    return false;
  }
  const proto = WireProtocol.prototype;
  if (proto[PATCHED]) return true;
  if (typeof proto._onData !== 'function') return false;
  const original = proto._onData;
  proto._onData = function guardedOnData(this: WireProtocolLike, socket: Socket, msg: Buffer): void {
    try {
      original.call(this, socket, msg);
    } catch (err) {
      if (this.isServer) throw err;
      this.mapIncomingMsg?.delete(socket);
      socket.destroy();
      const message = (err instanceof Error ? err.message : String(err)).slice(0, 200);
      drachtioFramingErrors.emit('recovered', { drachtio: `${this.host ?? '?'}:${this.port ?? '?'}`, message });
    }
  };
  proto[PATCHED] = true;
  return true;
}
