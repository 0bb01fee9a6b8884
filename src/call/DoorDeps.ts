import type { Logger } from 'pino';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import type { AudioLegStats } from '../media/AudioLeg.js';
import type { MediaClock } from '../media/MediaClock.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import type { CallRecordStore } from '../tenants/CallRecordStore.js';
import type { TenantCache } from '../tenants/TenantCache.js';
import type { CallRunner, CallRunnerDeps } from './CallRunner.js';

/** What every front door is built from, beside what is its own (SIP: numbers, rtpengine; web: tokens). */
export interface DoorDeps extends CallRunnerDeps {
  readonly tenants: TenantCache;
  readonly records: CallRecordStore;
  readonly providers: ProviderRegistry;
  readonly createVad: () => Promise<VoiceActivityDetector>;
  readonly clock: MediaClock;
  /** Where the calls' RTP endpoints bind. */
  readonly endpoint?: Partial<RtpEndpointOptions>;
  readonly logger?: Logger;
  /** Told each call's media statistics as its leg closes (metrics: RTP loss and jitter). */
  readonly legStats?: (stats: AudioLegStats) => void;
  /** The gateway's call runner (its call events feed metrics and webhooks); default: one of the door's own. */
  readonly runner?: CallRunner;
}
