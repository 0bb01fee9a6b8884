import type { TransferTarget } from '../tenants/schema.js';

/**
 * What the built-in tools ask of the call they run in: hand the caller to a person, send keypad tones.
 * The call's front door does the work (src/call: `Door.transfer`, `Door.sendDtmf`); a door that cannot
 * leaves it out and the tool tells the model so.
 */
export interface CallControls {
  transfer?(request: TransferRequest): Promise<TransferResult>;
  /** Sends `digits` (0-9, *, #, A-D) to the remote party as RFC 4733 events on the call's RTP. */
  sendDtmf?(digits: string): Promise<void>;
}

export interface TransferRequest {
  readonly target: TransferTarget;
  /** Why, in the model's words (for the record and the warm summary). */
  readonly reason: string;
  /** Ringing longer than this is 'no-answer' (the tenant's transfer.timeoutMs). */
  readonly timeoutMs: number;
  /** The trunk a tel: target (or any target, when set) is dialled through. */
  readonly trunk: string | undefined;
  /**
   * Warm transfers: the short summary the agent says to the person who answered, as text and as
   * 16 kHz mono PCM ready to play on their leg. Made from the transcript through the tenant's LLM and TTS.
   */
  summary(): Promise<{ readonly text: string; readonly audio: Int16Array }>;
}

/**
 * How a transfer ended. `transferred`: the caller's side took the REFER and reached the target (our leg
 * ends). `bridged`: the gateway dialled the target and joined the legs; `bridge` settles when that
 * bridged call ends. Anything else: the caller is still with the agent, which says so.
 */
export type TransferResult =
  | { readonly result: 'transferred'; readonly method: 'refer' }
  | { readonly result: 'bridged'; readonly method: 'bridge'; readonly bridge: Promise<void> }
  | {
      readonly result: 'refused' | 'no-answer' | 'busy' | 'declined' | 'failed';
      readonly method: 'refer' | 'bridge';
      /** One line for the model and the record ("486 Busy Here", "no answer within 30 s"). */
      readonly detail: string;
    };
