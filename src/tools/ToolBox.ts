import type { Logger } from 'pino';
import type { CallTools } from '../agent/CallTools.js';
import type { AgentProviders, ChatMessage } from '../providers/types.js';
import type { CallDoor } from '../tenants/CallRecordStore.js';
import type { Tenant } from '../tenants/schema.js';
import type { CallControls } from './controls.js';

/** What a call's tools are made from. */
export interface ToolBoxRequest {
  readonly tenant: Tenant;
  /** Sent with every tool webhook (`call` in its body). */
  readonly call: { readonly callId: string; readonly door: CallDoor; readonly from: string; readonly to: string; readonly variables: Readonly<Record<string, string>> };
  readonly controls: CallControls;
  /** The call's providers: a warm transfer's summary is written by its LLM and spoken by its TTS. */
  readonly providers: AgentProviders;
  readonly voice: string;
  /** The conversation so far. */
  transcript(): readonly ChatMessage[];
  readonly log: Logger;
}

export interface ToolBoxFactory {
  forCall(request: ToolBoxRequest): Promise<CallTools & { close(): Promise<void> | void }>;
}
