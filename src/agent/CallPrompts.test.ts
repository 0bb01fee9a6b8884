import { describe, expect, it } from 'vitest';
import type { CodecName } from '../media/codecs/AudioCodec.js';
import { FakeTts } from '../providers/testing/FakeProviders.js';
import { resolveAgentConfig } from './AgentConfig.js';
import { CallPrompts } from './CallPrompts.js';
import { CallSession, type CallMedia } from './CallSession.js';
import { PromptCache } from './PromptCache.js';

function callOn(codec: CodecName, voice = 'slt'): CallSession {
  const media = { codec: { name: codec } } as unknown as CallMedia;
  return new CallSession({ callId: 'c', config: resolveAgentConfig({ tenantId: 'acme', voice }), media, hangup: () => undefined });
}

describe('CallPrompts', () => {
  it('plays a phrase in whole sentences, a short first clause not on its own', () => {
    const p = new CallPrompts(new PromptCache(), callOn('PCMU'), new FakeTts(), {});
    expect(p.pieces('Sorry, I did not catch that. Could you say it again?')).toEqual(['Sorry, I did not catch that.', 'Could you say it again?']);
  });

  it('is cached only once every sentence is, and keys by the call’s codec and voice', async () => {
    const cache = new PromptCache();
    const tts = new FakeTts({ msPerChar: 5 });
    const pcmu = new CallPrompts(cache, callOn('PCMU'), tts, {});
    const text = 'Hello there. How can I help?';
    expect(pcmu.cached(text)).toBe(false);
    await pcmu.get('Hello there.');
    expect(pcmu.cached(text)).toBe(false);
    pcmu.warm(text);
    await pcmu.get('How can I help?');
    expect(pcmu.cached(text)).toBe(true);
    expect(new CallPrompts(cache, callOn('opus'), tts, {}).cached(text)).toBe(false);
    expect(new CallPrompts(cache, callOn('PCMU', 'rms'), tts, {}).cached(text)).toBe(false);
    // Warming what is cached synthesises nothing more.
    const before = tts.requests.length;
    pcmu.warm(text);
    expect(tts.requests.length).toBe(before);
  });
});
