import type { Logger } from 'pino';
import type { AgentSessionOptions } from '../agent/AgentSession.js';
import type { LiveSessions } from '../agent/LiveSessions.js';
import type { PromptCache } from '../agent/PromptCache.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import type { CallRunner } from '../call/CallRunner.js';
import type { AudioLegStats } from '../media/AudioLeg.js';
import type { MediaClock } from '../media/MediaClock.js';
import type { MediaWatchdogOptions } from '../media/MediaWatchdog.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import type { CallLimiter } from '../tenants/CallLimiter.js';
import type { CallRecordStore } from '../tenants/CallRecordStore.js';
import type { NumberStore } from '../tenants/NumberStore.js';
import type { TenantCache } from '../tenants/TenantCache.js';
import type { DigestAuth } from './invite/DigestAuth.js';
import type { SourceIgnoreOptions } from './invite/SourceIgnoreList.js';
import type { SourceLimiterOptions } from './invite/SourceLimiter.js';
import type { AuthFailureCounter, CallTokenRedeemer } from './invite/steps.js';
import type { MediaAnchor } from './rtpengine/MediaAnchor.js';

/**
 * What the SIP door is built from. Its own module so that the door's parts (inbound, outbound) can
 * name it without importing the door itself.
 */
export interface SipGatewayDeps {
  readonly numbers: NumberStore;
  readonly tenants: TenantCache;
  readonly limiter: CallLimiter;
  readonly records: CallRecordStore;
  readonly anchor: MediaAnchor;
  readonly providers: ProviderRegistry;
  readonly prompts: PromptCache;
  readonly createVad: () => Promise<VoiceActivityDetector>;
  readonly clock: MediaClock;
  /** Where our RTP endpoints bind (rtpengine sends the agent leg's media there). */
  readonly endpoint?: Partial<RtpEndpointOptions>;
  readonly agent?: Partial<AgentSessionOptions>;
  readonly logger?: Logger;
  /** Challenges devices and trunks that have credentials; one with a random key when absent. */
  readonly digest?: DigestAuth;
  /** Redeems web phones' call tokens; without it, SIP-over-WS calls are refused. */
  readonly tokens?: CallTokenRedeemer;
  /** Where the door's running sessions are tracked (one made by the gateway when absent). */
  readonly sessions?: LiveSessions;
  /** Told each call's media statistics as its leg closes (metrics: RTP loss and jitter). */
  readonly legStats?: (stats: AudioLegStats) => void;
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
  /** The gateway's call runner (its call events feed metrics and webhooks); default: one of this door's own. */
  readonly runner?: CallRunner;
}

