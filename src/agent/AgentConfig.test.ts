import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { ENDPOINTING_RANGE_MS, defaultAgentConfig, resolveAgentConfig, type AgentConfigInput } from './AgentConfig.js';

function refusal(input: AgentConfigInput): CallgateError {
  try {
    resolveAgentConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(CallgateError);
    return err as CallgateError;
  }
  throw new Error('resolveAgentConfig accepted an invalid config');
}

const intent = { name: 'hours', phrases: ['when do you open'], reply: 'We open at nine.' };

describe('resolveAgentConfig', () => {
  it('fills every default for a config that names only its tenant', () => {
    expect(resolveAgentConfig({ tenantId: 't1' })).toEqual({ tenantId: 't1', ...defaultAgentConfig });
  });

  it('merges nested sections field by field, and an explicit undefined keeps the default', () => {
    const c = resolveAgentConfig({
      tenantId: 't1',
      voice: undefined,
      greeting: 'Hi!',
      turn: { endpointingMs: 800, bargeIn: undefined },
      providers: { llm: 'openai' },
      goodbye: { reply: 'Bye now.' },
      intents: [intent],
    });
    expect(c.voice).toBe(defaultAgentConfig.voice);
    expect(c.greeting).toBe('Hi!');
    expect(c.turn).toEqual({ ...defaultAgentConfig.turn, endpointingMs: 800 });
    expect(c.providers).toEqual({ stt: 'pocketsphinx', llm: 'openai', tts: 'flite' });
    expect(c.goodbye).toEqual({ phrases: defaultAgentConfig.goodbye.phrases, reply: 'Bye now.' });
    expect(c.intents).toEqual([intent]);
  });

  it('accepts the edges of each range', () => {
    expect(() => resolveAgentConfig({ tenantId: 't', turn: { endpointingMs: ENDPOINTING_RANGE_MS.min, noInputMs: 1000, maxReprompts: 0 } })).not.toThrow();
    expect(() => resolveAgentConfig({ tenantId: 't', turn: { endpointingMs: ENDPOINTING_RANGE_MS.max, maxReprompts: 10 }, maxCallDurationMs: 1000 })).not.toThrow();
    expect(() => resolveAgentConfig({ tenantId: 't', intents: [{ name: 'sales', phrases: [], reply: 'Connecting.', dtmf: '1' }] })).not.toThrow();
  });

  it.each<[string, Omit<AgentConfigInput, 'tenantId'> & { tenantId?: string }]>([
    ['tenantId', { tenantId: '' }],
    ['turn.endpointingMs', { turn: { endpointingMs: 199 } }],
    ['turn.endpointingMs', { turn: { endpointingMs: 2001 } }],
    ['turn.endpointingMs', { turn: { endpointingMs: Number.NaN } }],
    ['turn.noInputMs', { turn: { noInputMs: 999 } }],
    ['turn.noInputMs', { turn: { noInputMs: Number.POSITIVE_INFINITY } }],
    ['turn.maxReprompts', { turn: { maxReprompts: -1 } }],
    ['turn.maxReprompts', { turn: { maxReprompts: 11 } }],
    ['turn.maxReprompts', { turn: { maxReprompts: 1.5 } }],
    ['maxCallDurationMs', { maxCallDurationMs: 999 }],
    ['intents[1].name', { intents: [intent, { ...intent, name: '' }] }],
    ['intents[0].reply', { intents: [{ ...intent, reply: '  ' }] }],
    ['intents[0]', { intents: [{ ...intent, phrases: [] }] }],
    ['greeting', { greeting: ' ' }],
    ['voice', { voice: '' }],
    ['apology', { apology: '' }],
    ['reprompt', { reprompt: '\n' }],
    ['fallbackReply', { fallbackReply: '' }],
    ['timeLimitMessage', { timeLimitMessage: ' ' }],
    ['goodbye.reply', { goodbye: { reply: '' } }],
    ['intents[0].dtmf', { intents: [{ ...intent, dtmf: '' }] }],
    ['intents[0].dtmf', { intents: [{ ...intent, dtmf: '1#' }] }],
    ['intents[1].dtmf', { intents: [{ ...intent, dtmf: '1' }, { ...intent, name: 'other', dtmf: '1' }] }],
  ])('refuses a bad %s with CG_AGENT_CONFIG_INVALID naming the field (%#)', (field, patch) => {
    const err = refusal({ tenantId: 'acme', ...patch });
    expect(err.code).toBe('CG_AGENT_CONFIG_INVALID');
    expect(err.status).toBe(400);
    expect(err.details).toEqual({ tenantId: patch.tenantId ?? 'acme', field });
    expect(err.message).toContain(field);
  });
});
