import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../tenants/CallRecordStore.js';
import { CallMetrics } from './CallMetrics.js';

const record = (over: Partial<CallRecord>): CallRecord => ({
  callId: 'c1',
  tenantId: 'joes',
  door: 'sip',
  from: 'sip:a@b',
  to: '+15005550100',
  startedAt: '2026-11-21T10:00:00.000Z',
  endedAt: '2026-11-21T10:01:00.000Z',
  outcome: 'agent-goodbye',
  latency: [],
  transcript: [],
  ...over,
});

describe('CallMetrics', () => {
  it('counts calls by door and outcome, turns latency marks into stage histograms, and reads active lines per tenant', async () => {
    const registry = new Registry();
    const active = new Map([['joes', 3]]);
    const metrics = new CallMetrics(registry, { active: async (t) => active.get(t) ?? 0 });
    metrics.record(record({ latency: [{ turn: 1, marks: { endOfTurn: 500, sttFinal: 520, llmFirstToken: 800, ttsFirstAudio: 900, firstPacketOut: 905 } }] }));
    metrics.record(record({ callId: 'c2', door: 'webrtc', outcome: 'rejected', latency: [], bargeIns: [{ turn: 2, reactionMs: 45 }] }));
    metrics.legClosed('sip', { packets: 1000, lost: 7, jitterMs: 12 });
    metrics.sipTiming({ callId: 'c1', tenantId: 'joes', inviteAt: 0, answeredAt: 5, ackAt: 10, firstPacketAt: 10.4 });
    metrics.sipRefused('CG_SIP_RATE_LIMITED');
    metrics.sipRefused('CG_SIP_RATE_LIMITED');
    metrics.sipRefused('CG_NUMBER_NOT_FOUND');
    metrics.sipAuthLockout('user');
    metrics.sipAuthLockout('source');
    metrics.sipAuthLockout('source');
    metrics.sipSourceIgnored();
    const text = await registry.metrics();
    expect(text).toContain('callgate_calls_total{door="sip",outcome="agent-goodbye"} 1');
    expect(text).toContain('callgate_calls_total{door="webrtc",outcome="rejected"} 1');
    // 905 ms voice to voice: in the 1 s bucket, not the 0.75 s one.
    expect(text).toContain('callgate_turn_latency_seconds_bucket{le="0.75",stage="voice_to_voice"} 0');
    expect(text).toContain('callgate_turn_latency_seconds_bucket{le="1",stage="voice_to_voice"} 1');
    expect(text).toContain('callgate_turn_latency_seconds_count{stage="stt_final"} 1');
    expect(text).toContain('callgate_sip_ack_to_first_packet_seconds_bucket{le="0.001"} 1');
    expect(text).toContain('callgate_tenant_calls_active{tenant="joes"} 3');
    expect(text).toContain('callgate_sip_auth_lockouts_total{scope="user"} 1');
    expect(text).toContain('callgate_sip_auth_lockouts_total{scope="source"} 2');
    expect(text).toContain('callgate_sip_ignored_sources_total 1');
    expect(text).toContain('callgate_barge_in_reaction_seconds_bucket{le="0.04"} 0');
    expect(text).toContain('callgate_barge_in_reaction_seconds_bucket{le="0.06"} 1');
    expect(text).toContain('callgate_rtp_packets_received_total{door="sip"} 1000');
    expect(text).toContain('callgate_rtp_packets_lost_total{door="sip"} 7');
    expect(text).toContain('callgate_rtp_jitter_seconds_bucket{le="0.02",door="sip"} 1');
    expect(text).toContain('callgate_sip_refused_total{code="CG_SIP_RATE_LIMITED"} 2');
    expect(text).toContain('callgate_sip_refused_total{code="CG_NUMBER_NOT_FOUND"} 1');
  });
});

describe('CallMetrics: transfers and webhook deliveries (issue 19)', () => {
  it('counts transfers by result and call.ended delivery tries by outcome', async () => {
    const registry = new Registry();
    const metrics = new CallMetrics(registry, { active: async () => 0 });
    const transferred = (result: 'bridged' | 'busy') => metrics.callEvent({ type: 'call.transferred', callId: 'c1', tenantId: 'joes', door: 'sip', result });
    transferred('bridged');
    transferred('busy');
    transferred('busy');
    metrics.callEvent({ type: 'call.answered', callId: 'c1', tenantId: 'joes', door: 'sip' });
    metrics.webhookDelivery({ outcome: 'retry' });
    metrics.webhookDelivery({ outcome: 'delivered' });
    const text = await registry.metrics();
    expect(text).toContain('callgate_transfers_total{result="bridged"} 1');
    expect(text).toContain('callgate_transfers_total{result="busy"} 2');
    expect(text).toContain('callgate_webhook_deliveries_total{outcome="retry"} 1');
    expect(text).toContain('callgate_webhook_deliveries_total{outcome="delivered"} 1');
  });
});
