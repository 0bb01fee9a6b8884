import type { RoomHub } from '../rooms/RoomHub.js';
import type { LiveSessions } from '../agent/LiveSessions.js';
import type { DoorDeps } from '../call/DoorDeps.js';
import type { MediaWatchdogOptions } from '../media/MediaWatchdog.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import type { DeviceBindingStore } from '../tenants/DeviceBindingStore.js';
import type { DeviceStore } from '../tenants/DeviceStore.js';
import type { NumberStore } from '../tenants/NumberStore.js';
import type { RegistrarOptions } from './register/Registrar.js';
import type { DigestAuth } from './invite/DigestAuth.js';
import type { SourceIgnoreOptions } from './invite/SourceIgnoreList.js';
import type { SourceLimiterOptions } from './invite/SourceLimiter.js';
import type { AuthFailureCounter, CallTokenRedeemer } from './invite/steps.js';
import type { MediaAnchor } from './rtpengine/MediaAnchor.js';

/**
 * What the SIP door is built from. Its own module so that the door's parts (inbound, outbound) can
 * name it without importing the door itself.
 */
export interface SipGatewayDeps extends DoorDeps {
  /** How long a transfer's REFER may go without a final NOTIFY before the gateway bridges instead (default 30 s). */
  readonly transferNotifyTimeoutMs?: number;
  readonly numbers: NumberStore;
  readonly anchor: MediaAnchor;
  /** The rooms this gateway holds: a number routed to a room joins its callers to it. None: such calls are refused (503). */
  readonly rooms?: RoomHub;
  /** Where our RTP endpoints bind (rtpengine sends the agent leg's media there). */
  readonly endpoint?: Partial<RtpEndpointOptions>;
  /** Challenges devices and trunks that have credentials; one with a random key when absent. */
  readonly digest?: DigestAuth;
  /** Redeems web phones' call tokens; without it, SIP-over-WS calls are refused. */
  readonly tokens?: CallTokenRedeemer;
  /** Where the door's running sessions are tracked (one made by the gateway when absent). */
  readonly sessions?: LiveSessions;
  /** When a caller whose RTP stopped without a BYE is hung up on. */
  readonly mediaWatchdog?: Partial<MediaWatchdogOptions>;
  /** The per-source INVITE rate limit (raise it for a carrier sending all its calls from one address). */
  readonly sourceLimit?: Partial<SourceLimiterOptions>;
  /**
   * Failed digest attempts, counted cluster-wide, with lockouts (src/tenants/SipAuthFailureStore.ts).
   * Required: without it a device's password could be guessed at the INVITE rate.
   */
  readonly authFailures: AuthFailureCounter;
  /** When a source that keeps sending refused INVITEs is ignored, and for how long. */
  readonly ignore?: Partial<SourceIgnoreOptions>;
  /**
   * The tenants' devices and where they registered (docs/devices.md). With both, the door is a
   * registrar (REGISTER), device INVITEs are digest-checked against them, and the API can call a
   * device; without them drachtio answers REGISTER 503 and only trunks call.
   */
  readonly devices?: DeviceStore;
  readonly bindings?: DeviceBindingStore;
  /** Registration intervals (Min-Expires and the rest). */
  readonly registrar?: Partial<RegistrarOptions>;
}
