import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legCodecFrom, openAudioLeg, type AudioLeg } from '../../media/AudioLeg.js';
import { MediaClock } from '../../media/MediaClock.js';
import { answerFor, buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../media/sdp.js';
import { goertzelPower, powerToDbfs, tone } from '../../media/signal.js';
import { until } from '../../util/testing/wait.js';
import { MediaAnchor } from './MediaAnchor.js';
import { RtpengineProcess } from './RtpengineProcess.js';
import { describeWith, missingTool } from '../../../tests/support/tools.js';

let rtpe: RtpengineProcess;
let anchor: MediaAnchor;
const clock = new MediaClock();

beforeAll(async () => {
  // Without rtpengine every block below is one failing (CI) or skipped test instead (describeWith).
  if (missingTool('rtpengine')) return;
  rtpe = await RtpengineProcess.start();
  anchor = await MediaAnchor.open({ port: rtpe.ngPort });
});
afterAll(async () => {
  anchor?.close();
  await rtpe?.stop();
  clock.stop();
});

/** Collects a leg's 16 kHz audio. */
function record(leg: AudioLeg): Int16Array[] {
  const frames: Int16Array[] = [];
  leg.on('audio', (f) => frames.push(Int16Array.from(f)));
  return frames;
}

/** Level of `hz` in the loudest 200 ms of what arrived, in dBFS. */
function toneLevel(frames: readonly Int16Array[], hz: number): number {
  const all = new Int16Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    all.set(f, at);
    at += f.length;
  }
  let best = -Infinity;
  for (let start = 0; start + 3200 <= all.length; start += 1600) {
    best = Math.max(best, powerToDbfs(goertzelPower(all, 16000, hz, { start, end: start + 3200 })));
  }
  return best;
}

describeWith(['rtpengine'], 'a trunk call anchored in rtpengine', () => {
  it('carries a tone both ways between a PCMU caller and the agent leg', async () => {
    const ports = { portRange: { min: 35000, max: 35999 } };
    // The "trunk caller": a PCMU leg of ours with its own offer.
    const caller = await openAudioLeg({ callId: 'anchor-audio', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock, env: {}, endpoint: ports });
    let agent: AudioLeg | undefined;
    try {
      const callerOffer = buildSdp({ address: '127.0.0.1', port: caller.endpoint.localAddress.port, ...offerCodecs(['PCMU']) });
      const offered = await anchor.offer({ callId: 'anchor-audio', fromTag: 'caller', sdp: callerOffer, profile: 'trunk' });
      expect(offered.media.codec.name).toBe('PCMU');
      expect(offered.media.remote.port).toBeGreaterThanOrEqual(30000);

      agent = await openAudioLeg({
        callId: 'anchor-audio',
        legId: 'agent',
        codec: legCodecFrom(offered.media),
        clock,
        env: {},
        endpoint: { ...ports, remote: { address: offered.media.remote.address, port: offered.media.remote.port } },
      });
      const agentAnswer = buildSdp({ address: '127.0.0.1', port: agent.endpoint.localAddress.port, ...answerFor(offered.media) });
      const answered = await anchor.answer({ callId: 'anchor-audio', fromTag: 'caller', toTag: 'agent', sdp: agentAnswer, profile: 'trunk' });
      const forCaller = negotiate(parseRemoteSdp(answered.sdp));
      expect(forCaller.codec.name).toBe('PCMU');
      caller.endpoint.setRemote({ address: forCaller.remote.address, port: forCaller.remote.port });

      const atAgent = record(agent);
      const atCaller = record(caller);
      caller.play(tone(400, 600, { amplitude: 8000 }));
      agent.play(tone(400, 600, { amplitude: 8000 }));
      await until(() => atAgent.length >= 25 && atCaller.length >= 25, 5000, 'audio through rtpengine both ways');
      // A sine of amplitude 8000 is -15.3 dBFS; G.711 twice and resampling cost a dB or two at most.
      console.log(JSON.stringify({ tone400Dbfs: { atAgent: toneLevel(atAgent, 400), atCaller: toneLevel(atCaller, 400) } }));
      expect(toneLevel(atAgent, 400)).toBeGreaterThan(-18);
      expect(toneLevel(atCaller, 400)).toBeGreaterThan(-18);
      expect(toneLevel(atAgent, 1000)).toBeLessThan(-40);

      await anchor.delete({ callId: 'anchor-audio', fromTag: 'caller' });
      expect(await anchor.sessionCount()).toBe(0);
    } finally {
      await agent?.close();
      await caller.close();
    }
  });

  it('leaves no session after 20 offer/answer/delete cycles', async () => {
    const ms: Record<'offer' | 'answer' | 'delete', number[]> = { offer: [], answer: [], delete: [] };
    for (let i = 0; i < 20; i++) {
      const callId = `cycle-${i}`;
      const callerOffer = buildSdp({ address: '127.0.0.1', port: 40000 + 2 * i, ...offerCodecs(['PCMU', 'PCMA']) });
      let t = performance.now();
      const offered = await anchor.offer({ callId, fromTag: 'c', sdp: callerOffer, profile: 'trunk' });
      ms.offer.push(performance.now() - t);
      const agentAnswer = buildSdp({ address: '127.0.0.1', port: 41000 + 2 * i, ...answerFor(offered.media) });
      t = performance.now();
      await anchor.answer({ callId, fromTag: 'c', toTag: 'a', sdp: agentAnswer, profile: 'trunk' });
      ms.answer.push(performance.now() - t);
      t = performance.now();
      await anchor.delete({ callId, fromTag: 'c' });
      ms.delete.push(performance.now() - t);
    }
    expect(await anchor.sessionCount()).toBe(0);
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
    // Figures for the report, not assertions (no timing checks in tests).
    console.log(JSON.stringify({ ngMedianMs: { offer: median(ms.offer), answer: median(ms.answer), delete: median(ms.delete) } }));
  });
});

describeWith(['rtpengine'], 'trunk transcoding to Opus (off by default)', () => {
  it('offers the agent side Opus beside PCMU when asked, and the answer to the caller stays PCMU', async () => {
    const opusAnchor = await MediaAnchor.open({ port: rtpe.ngPort, trunkTranscodeOpus: true });
    try {
      const callerOffer = buildSdp({ address: '127.0.0.1', port: 42010, ...offerCodecs(['PCMU']) });
      const offered = await opusAnchor.offer({ callId: 'opus-transcode', fromTag: 'c', sdp: callerOffer, profile: 'trunk' });
      expect(offered.media.codec.name).toBe('opus');
      const agentAnswer = buildSdp({ address: '127.0.0.1', port: 42012, ...answerFor(offered.media) });
      const answered = await opusAnchor.answer({ callId: 'opus-transcode', fromTag: 'c', toTag: 'a', sdp: agentAnswer, profile: 'trunk' });
      expect(answered.media.codec.name).toBe('PCMU');
      await opusAnchor.delete({ callId: 'opus-transcode', fromTag: 'c' });
      expect(await opusAnchor.sessionCount()).toBe(0);
    } finally {
      opusAnchor.close();
    }
  });
});

describeWith(['rtpengine'], 'bad input and a missing rtpengine', () => {
  it("catches rtpengine's ok to an empty SDP and deletes the call it made", async () => {
    await expect(anchor.offer({ callId: 'empty-sdp', fromTag: 'c', sdp: '', profile: 'trunk' })).rejects.toMatchObject({
      code: 'CG_RTPENGINE_BAD_SDP',
      status: 502,
    });
    expect(await anchor.sessionCount()).toBe(0);
  });

  it('refuses an offer whose codecs we cannot use (G.729 only) as bad SDP', async () => {
    const g729 = buildSdp({ address: '127.0.0.1', port: 42000, codecs: [{ pt: 18, name: 'G729', clockRate: 8000 }] });
    await expect(anchor.offer({ callId: 'g729', fromTag: 'c', sdp: g729, profile: 'trunk' })).rejects.toMatchObject({
      code: 'CG_RTPENGINE_BAD_SDP',
      details: { sdpCode: 'CG_SDP_NO_COMMON_CODEC' },
    });
    expect(await anchor.sessionCount()).toBe(0);
  });

  it('reports an unknown call-id as CG_RTPENGINE_FAILED with its reason', async () => {
    await expect(anchor.delete({ callId: 'never-offered', fromTag: 'x' })).rejects.toMatchObject({ code: 'CG_RTPENGINE_FAILED' });
    const sdp = buildSdp({ address: '127.0.0.1', port: 42002, ...offerCodecs(['PCMU']) });
    await expect(anchor.answer({ callId: 'never-offered', fromTag: 'x', toTag: 'y', sdp, profile: 'trunk' })).rejects.toMatchObject({
      code: 'CG_RTPENGINE_FAILED',
      details: { reason: 'Unknown call-id' },
    });
  });

  it('reports a stopped rtpengine as CG_RTPENGINE_UNAVAILABLE within the timeout', async () => {
    const own = await RtpengineProcess.start({ portMin: 31000, portMax: 31099 });
    const client = await MediaAnchor.open({ port: own.ngPort, timeoutMs: 300 });
    try {
      await client.ping();
      await own.stop();
      const sdp = buildSdp({ address: '127.0.0.1', port: 42004, ...offerCodecs(['PCMU']) });
      const err = await client.offer({ callId: 'gone', fromTag: 'c', sdp, profile: 'trunk' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CG_RTPENGINE_UNAVAILABLE', status: 503, retryable: true });
    } finally {
      client.close();
      await own.stop();
    }
  });
});
