import type { ToolOutcome } from '../agent/CallTools.js';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE } from '../media/types.js';
import { END_CALL_TOOL, type AgentProviders, type ChatMessage, type ToolCall, type ToolSpec } from '../providers/types.js';
import type { BuiltinTool, Tenant, TransferTarget } from '../tenants/schema.js';
import type { CallControls } from './controls.js';
import { toolFailed, type ToolSource } from './ToolSource.js';

export interface BuiltinContext {
  readonly tenant: Tenant;
  readonly controls: CallControls;
  readonly providers: AgentProviders;
  readonly voice: string;
  transcript(): readonly ChatMessage[];
}

/** The built-ins a tenant gets when it names none: the one the agent has always had. */
export const DEFAULT_BUILTINS: readonly BuiltinTool[] = ['end_call'];

/** How long a warm transfer's summary may take to write and speak before a plain one is used. */
const SUMMARY_BUDGET_MS = 5000;

/**
 * The tools callgate itself provides: `end_call` (the model's way to hang up, streamed as a hang-up by
 * the provider), `transfer_call` (to one of the tenant's transfer targets, by name) and `send_dtmf`
 * (keypad tones to the far end: an IVR the agent navigates on an outbound call).
 */
export function builtinTools(ctx: BuiltinContext): ToolSource {
  const enabled = new Set(ctx.tenant.builtinTools ?? DEFAULT_BUILTINS);
  const targets = ctx.tenant.transfer?.targets ?? [];
  const specs: ToolSpec[] = [];
  if (enabled.has('end_call')) specs.push(END_CALL_TOOL);
  if (enabled.has('transfer_call') && targets.length > 0) specs.push(transferSpec(targets));
  if (enabled.has('send_dtmf')) specs.push(DTMF_SPEC);
  const offered = new Set(specs.map((s) => s.name));
  return {
    specs,
    // The door plays ringback while a transfer rings; words over it would only confuse the caller.
    filler: (name) => (name === 'transfer_call' ? '' : undefined),
    async run(call: ToolCall, args: Record<string, unknown>): Promise<ToolOutcome> {
      if (!offered.has(call.name)) return toolFailed(call.name, 'not available');
      if (call.name === 'send_dtmf') return sendDtmf(ctx, args);
      if (call.name === 'transfer_call') return transfer(ctx, targets, args);
      return toolFailed(call.name, 'not available');
    },
  };
}

function transferSpec(targets: readonly TransferTarget[]): ToolSpec {
  const list = targets.map((t) => `${t.name}${t.description ? ` (${t.description})` : ''}`).join('; ');
  return {
    name: 'transfer_call',
    description: `Transfer the caller to a person. Tell the caller first. Targets: ${list}.`,
    parameters: {
      type: 'object',
      properties: {
        target: { type: 'string', enum: targets.map((t) => t.name), description: 'Who to transfer to' },
        reason: { type: 'string', description: 'Why, in a few words (the person is told)' },
      },
      required: ['target'],
      additionalProperties: false,
    },
  };
}

const DTMF_SPEC: ToolSpec = {
  name: 'send_dtmf',
  description: 'Press keys on the phone keypad (to navigate a phone menu on the other end).',
  parameters: {
    type: 'object',
    properties: { digits: { type: 'string', pattern: '^[0-9*#A-Da-d]{1,32}$', description: 'Keys to press, e.g. "1" or "1234#"' } },
    required: ['digits'],
    additionalProperties: false,
  },
};

async function sendDtmf(ctx: BuiltinContext, args: Record<string, unknown>): Promise<ToolOutcome> {
  const digits = typeof args.digits === 'string' ? args.digits.toUpperCase() : '';
  if (!/^[0-9*#A-D]{1,32}$/.test(digits)) return toolFailed('send_dtmf', 'digits must be 1–32 of 0-9, *, #, A-D');
  if (!ctx.controls.sendDtmf) return toolFailed('send_dtmf', 'keypad tones can be sent on phone (SIP) calls only');
  try {
    await ctx.controls.sendDtmf(digits);
    return { ok: true, content: JSON.stringify({ sent: digits }) };
  } catch (err) {
    return toolFailed('send_dtmf', err instanceof Error ? err.message : String(err));
  }
}

async function transfer(ctx: BuiltinContext, targets: readonly TransferTarget[], args: Record<string, unknown>): Promise<ToolOutcome> {
  const target = targets.find((t) => t.name === args.target);
  if (!target) return toolFailed('transfer_call', `no transfer target named ${JSON.stringify(args.target)}; use one of ${targets.map((t) => t.name).join(', ')}`);
  if (!ctx.controls.transfer) return toolFailed('transfer_call', 'this call cannot be transferred');
  const reason = typeof args.reason === 'string' ? args.reason.slice(0, 300) : '';
  try {
    const result = await ctx.controls.transfer({
      target,
      reason,
      timeoutMs: ctx.tenant.transfer?.timeoutMs ?? 30_000,
      trunk: ctx.tenant.transfer?.trunk,
      summary: () => summarise(ctx, reason),
    });
    const ok = result.result === 'transferred' || result.result === 'bridged';
    // The model hears how it went; on a failure it tells the caller, who is still on the line with it.
    return { ok, content: JSON.stringify({ result: result.result, ...('detail' in result ? { detail: result.detail } : {}) }) };
  } catch (err) {
    return toolFailed('transfer_call', err instanceof Error ? err.message : String(err));
  }
}

/** A warm transfer's briefing: a sentence or two from the transcript, through the tenant's LLM, spoken by its TTS. */
async function summarise(ctx: BuiltinContext, reason: string): Promise<{ text: string; audio: Int16Array }> {
  const signal = AbortSignal.timeout(SUMMARY_BUDGET_MS);
  const conversation = ctx
    .transcript()
    .filter((m) => (m.role === 'user' || m.role === 'assistant') && m.content)
    .map((m) => `${m.role === 'user' ? 'Caller' : 'Agent'}: ${m.content}`)
    .join('\n');
  let text = '';
  try {
    for await (const ev of ctx.providers.llm.stream({
      messages: [
        { role: 'system', content: 'You brief a colleague who is about to take over a phone call. In one or two short spoken sentences, say who is calling and what they need. No greeting.' },
        { role: 'user', content: `${conversation}\n\nReason for the transfer: ${reason || 'the caller asked for a person'}` },
      ],
      signal,
      tools: [],
    })) {
      if (ev.type === 'text') text += ev.text;
    }
  } catch {
    text = '';
  }
  text = text.trim() || `A caller is being transferred to you${reason ? `: ${reason}` : ''}.`;
  const parts: Int16Array[] = [];
  let resampler: Resampler | undefined;
  try {
    for await (const chunk of ctx.providers.tts.synthesize({ text, voice: ctx.voice, signal })) {
      let pcm = chunk.samples;
      if (chunk.sampleRate !== PIPELINE_RATE) {
        resampler ??= new Resampler(chunk.sampleRate, PIPELINE_RATE);
        pcm = resampler.process(pcm);
      }
      parts.push(pcm);
    }
  } catch {
    // Text without audio: the door still bridges; the person hears no briefing.
  }
  const audio = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    audio.set(p, at);
    at += p.length;
  }
  return { text, audio };
}
