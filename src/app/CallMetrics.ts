import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CallEvent } from '../call/CallRunner.js';
import type { DeliveryResult } from '../webhooks/DeliveryQueue.js';
import type { LatencyMark } from '../agent/events.js';
import type { SipCallTiming, SipGateway } from '../sip/SipGateway.js';
import type { ErrorCode } from '../errors.js';
import type { CallDoor, CallRecord } from '../tenants/CallRecordStore.js';

/**
 * Call metrics for /metrics, fed from what the gateway already produces: every call's record (door,
 * outcome, latency marks per turn) as it is written, the SIP door's call timings, and the per-tenant
 * line counters in Redis (cluster-wide, read at scrape time).
 */
const LATENCY_BUCKETS_S = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5];

/** The record's marks under the names operators look for ("voice to voice" is the first packet out). */
const MARK_NAMES: Record<LatencyMark, string> = {
  endOfTurn: 'end_of_turn',
  sttFinal: 'stt_final',
  llmFirstToken: 'llm_first_token',
  ttsFirstAudio: 'tts_first_audio',
  firstPacketOut: 'voice_to_voice',
};

export interface ActiveLines {
  active(tenantId: string): Promise<number>;
}

export class CallMetrics {
  private readonly calls: Counter<'door' | 'outcome'>;
  private readonly realtimeAudio: Counter<'provider' | 'direction'>;
  private readonly realtimeTokens: Counter<'provider' | 'direction'>;
  private readonly realtimeFallbacks: Counter<'provider'>;
  private readonly latency: Histogram<'stage'>;
  private readonly ackToFirstPacket: Histogram;
  private readonly bargeIn: Histogram;
  private readonly rtpPackets: Counter<'door'>;
  private readonly rtpLost: Counter<'door'>;
  private readonly rtpJitter: Histogram<'door'>;
  private readonly sipRefusedTotal: Counter<'code'>;
  private readonly sipAuthLockouts: Counter<'scope'>;
  private readonly sipIgnoredSources: Counter;
  private readonly transfers: Counter<'result'>;
  private readonly webhookDeliveries: Counter<'outcome'>;
  private readonly tenantsSeen = new Set<string>();

  constructor(registry: Registry, lines: ActiveLines) {
    this.realtimeAudio = new Counter({ name: 'callgate_realtime_audio_seconds_total', help: 'Audio sent to (in) and received from (out) speech-to-speech models, by provider', labelNames: ['provider', 'direction'], registers: [registry] });
    this.realtimeTokens = new Counter({ name: 'callgate_realtime_tokens_total', help: 'Tokens speech-to-speech models reported, by provider and direction', labelNames: ['provider', 'direction'], registers: [registry] });
    this.realtimeFallbacks = new Counter({ name: 'callgate_realtime_fallbacks_total', help: 'Calls whose speech-to-speech model was gone for good (the cascade answered the rest)', labelNames: ['provider'], registers: [registry] });
    this.calls = new Counter({ name: 'callgate_calls_total', help: 'Calls ended, by door and outcome (rejected ones included)', labelNames: ['door', 'outcome'], registers: [registry] });
    this.latency = new Histogram({
      name: 'callgate_turn_latency_seconds',
      help: "From the end of the caller's speech to each stage of the answer: end_of_turn, stt_final, llm_first_token, tts_first_audio, voice_to_voice (first packet out)",
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    });
    this.ackToFirstPacket = new Histogram({
      name: 'callgate_sip_ack_to_first_packet_seconds',
      help: "SIP calls: the caller's ACK to the greeting's first RTP packet",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.bargeIn = new Histogram({
      name: 'callgate_barge_in_reaction_seconds',
      help: "The caller starting to speak over the agent to the agent going quiet (queued audio flushed)",
      buckets: [0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5],
      registers: [registry],
    });
    this.rtpPackets = new Counter({ name: 'callgate_rtp_packets_received_total', help: "RTP packets received from callers, by door (counted when each call's leg closes)", labelNames: ['door'], registers: [registry] });
    this.rtpLost = new Counter({ name: 'callgate_rtp_packets_lost_total', help: 'RTP packets lost on the way from callers (RFC 3550 A.3), by door', labelNames: ['door'], registers: [registry] });
    this.rtpJitter = new Histogram({
      name: 'callgate_rtp_jitter_seconds',
      help: "Each call's interarrival jitter from the caller at its end (RFC 3550 A.8), by door",
      labelNames: ['door'],
      buckets: [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
      registers: [registry],
    });
    this.transfers = new Counter({
      name: 'callgate_transfers_total',
      help: 'Hand-overs to a person the agent attempted (transfer_call), by result: transferred (REFER followed), bridged, refused, no-answer, busy, declined, failed',
      labelNames: ['result'],
      registers: [registry],
    });
    this.webhookDeliveries = new Counter({
      name: 'callgate_webhook_deliveries_total',
      help: 'Tries to deliver call.ended webhooks, by outcome: delivered (2xx), retry (failed, due again), dropped (given up after 25 h, or the tenant is gone)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.sipRefusedTotal = new Counter({
      name: 'callgate_sip_refused_total',
      help: 'SIP INVITEs refused before they reached a tenant (no call record for them), by error code: CG_SIP_RATE_LIMITED, CG_SIP_SCANNER, CG_SIP_FORBIDDEN, CG_NUMBER_NOT_FOUND, …',
      labelNames: ['code'],
      registers: [registry],
    });
    this.sipAuthLockouts = new Counter({
      name: 'callgate_sip_auth_lockouts_total',
      help: 'SIP digest lockouts started (too many failed attempts), by scope: user (one username) or source (one address)',
      labelNames: ['scope'],
      registers: [registry],
    });
    this.sipIgnoredSources = new Counter({
      name: 'callgate_sip_ignored_sources_total',
      help: 'Source addresses put on the SIP ignore list for sending INVITEs we kept refusing (their INVITEs are then counted as callgate_sip_refused_total{code="CG_SIP_SOURCE_IGNORED"})',
      registers: [registry],
    });
    const seen = this.tenantsSeen;
    new Gauge({
      name: 'callgate_tenant_calls_active',
      help: 'Calls in progress per tenant, cluster-wide (the line counters in Redis), for tenants this process has served',
      labelNames: ['tenant'],
      registers: [registry],
      // Already cluster-wide: processes of one cluster report the same figure, which must not be summed.
      aggregator: 'max',
      async collect() {
        for (const tenant of seen) this.set({ tenant }, await lines.active(tenant).catch(() => 0));
      },
    });
  }

  /** A call's record was written. */
  record(r: CallRecord): void {
    this.tenantsSeen.add(r.tenantId);
    this.calls.inc({ door: r.door, outcome: r.outcome });
    for (const b of r.bargeIns ?? []) this.bargeIn.observe(b.reactionMs / 1000);
    if (r.realtime) {
      const { provider } = r.realtime;
      this.realtimeAudio.inc({ provider, direction: 'in' }, r.realtime.audioInMs / 1000);
      this.realtimeAudio.inc({ provider, direction: 'out' }, r.realtime.audioOutMs / 1000);
      this.realtimeTokens.inc({ provider, direction: 'in' }, r.realtime.inputTokens);
      this.realtimeTokens.inc({ provider, direction: 'out' }, r.realtime.outputTokens);
      if (r.realtime.fellBack) this.realtimeFallbacks.inc({ provider });
    }
    for (const { marks } of r.latency) {
      for (const [mark, ms] of Object.entries(marks) as [LatencyMark, number | undefined][]) {
        if (ms !== undefined) this.latency.observe({ stage: MARK_NAMES[mark] }, ms / 1000);
      }
    }
  }

  /** A call's media leg closed: what came from the caller. */
  legClosed(door: CallDoor, received: { packets: number; lost: number; jitterMs: number }): void {
    this.rtpPackets.inc({ door }, received.packets);
    this.rtpLost.inc({ door }, received.lost);
    if (received.packets > 0) this.rtpJitter.observe({ door }, received.jitterMs / 1000);
  }

  /** A tenant whose calls this process carries (seeded at start so its gauge shows before its first call ends). */
  tenant(id: string): void {
    this.tenantsSeen.add(id);
  }

  /**
   * Everything the SIP door tells metrics, wired in one place: the Gateway calls this on its door, and
   * tests/sip/flood.test.ts on the door it floods, so the flood is counted as production counts it.
   */
  watchSip(sip: Pick<SipGateway, 'on'>): void {
    sip.on('call-timing', (t) => this.sipTiming(t));
    sip.on('refused', (r) => this.sipRefused(r.code));
    sip.on('auth-lockout', (l) => this.sipAuthLockout(l.scope));
    sip.on('source-ignored', () => this.sipSourceIgnored());
  }

  /** An INVITE refused before it reached a tenant; the code's set is the error catalogue, so labels stay few. */
  sipRefused(code: ErrorCode): void {
    this.sipRefusedTotal.inc({ code });
  }

  /** A username or source was locked out after failed digest attempts. */
  sipAuthLockout(scope: 'user' | 'source'): void {
    this.sipAuthLockouts.inc({ scope });
  }

  /** A source was put on the SIP ignore list. */
  sipSourceIgnored(): void {
    this.sipIgnoredSources.inc();
  }

  sipTiming(t: SipCallTiming): void {
    this.tenantsSeen.add(t.tenantId);
    if (t.ackAt !== undefined) this.ackToFirstPacket.observe((t.firstPacketAt - t.ackAt) / 1000);
  }

  /** The call runner's events: transfers by result. */
  callEvent(event: CallEvent): void {
    if (event.type === 'call.transferred') this.transfers.inc({ result: event.result });
  }

  /** One try of a call.ended delivery. */
  webhookDelivery(result: Pick<DeliveryResult, 'outcome'>): void {
    this.webhookDeliveries.inc({ outcome: result.outcome });
  }
}
