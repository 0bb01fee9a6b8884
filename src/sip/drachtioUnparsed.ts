import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * Requests drachtio-server accepts but drachtio-srf cannot parse get a 400 instead of nothing.
 *
 * drachtio-server's parser (sofia) is more lenient than drachtio-srf's: an INVITE whose Request-URI has
 * a space in it (`INVITE sip:+1 415…@gw SIP/2.0`) gets drachtio's 100 Trying and is handed to the app,
 * where drachtio-srf fails to parse it, prints the whole message to stderr (`console.error`, outside
 * our logger and its levels: up to 64 KB a message, for anyone to fill the log with) and drops it. The
 * caller then hears 100 Trying and nothing more, and drachtio holds the transaction for 64 s. Found by
 * the live-door fuzz target (fuzz/targets/sipInvite.ts).
 *
 * There is no hook for it, so this wraps drachtio-srf's DrachtioAgent#_onMsg (as drachtioFraming.ts
 * wraps its wire protocol): a request from the network that drachtio-srf's own parser refuses is
 * answered 400 on its drachtio transaction (drachtio builds the response's Via, From, To, Call-ID and
 * CSeq from the request) and reported once, without its text; everything else goes on as before.
 * Checked against drachtio-srf 5.0.x; when its internals differ nothing is patched and the install says so.
 */
export interface UnparsedRequest {
  /** The address the request came from (as drachtio reports it). */
  readonly source: string;
  /** Its size; never its text, which is the sender's. */
  readonly bytes: number;
}

export const drachtioUnparsed = new EventEmitter<{ refused: [UnparsedRequest] }>();

interface AgentLike {
  readonly wp?: { send(socket: Socket, msg: string): string };
  _onMsg(socket: Socket, msg: string): void;
}

const PATCHED = Symbol.for('callgate.drachtioUnparsedGuard');

/** Idempotent. False when drachtio-srf is not the shape this was written for. */
export function installUnparsedRequestGuard(): boolean {
  const require = createRequire(import.meta.url);
  let Agent: { prototype: AgentLike & { [PATCHED]?: true } };
  let SipMessage: new (raw: string) => unknown;
  try {
    Agent = require('drachtio-srf/lib/drachtio-agent.js') as typeof Agent;
    SipMessage = require('drachtio-srf/lib/sip-parser/message.js') as typeof SipMessage;
  } catch {
    return false;
  }
  const proto = Agent.prototype;
  if (proto[PATCHED]) return true;
  if (typeof proto._onMsg !== 'function' || typeof SipMessage !== 'function') return false;
  const original = proto._onMsg;
  proto._onMsg = function guardedOnMsg(this: AgentLike, socket: Socket, msg: string): void {
    const pos = msg.indexOf('\r\n');
    // The leader: msgId|sip|source|length|protocol|address|port|time|transactionId|dialogId|…
    const token = (pos === -1 ? msg : msg.slice(0, pos)).split('|');
    if (token[1] === 'sip' && token[2] === 'network' && pos !== -1 && this.wp) {
      const raw = msg.slice(pos + 2);
      let parsed = true;
      try {
        new SipMessage(raw);
      } catch {
        parsed = false;
      }
      // Only requests can be answered (a response has no transaction of ours to answer on).
      if (!parsed && !raw.startsWith('SIP/')) {
        this.wp.send(socket, `sip|${token[8] ?? ''}|\r\nSIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n`);
        drachtioUnparsed.emit('refused', { source: token[5] ?? '', bytes: Buffer.byteLength(raw) });
        return;
      }
    }
    original.call(this, socket, msg);
  };
  proto[PATCHED] = true;
  return true;
}
