import type { AgentConfig } from '../agent/AgentConfig.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import type { Room, RoomAgent } from '../tenants/RoomStore.js';
import type { Tenant } from '../tenants/schema.js';

/** A room lasts as long as people stay; an agent in it has no call-length limit of its own beyond this. */
const ROOM_AGENT_MAX_MS = 4 * 3600_000;

/**
 * The agent config of an AI participant: the tenant's agent (providers, intents, phrases, turn
 * settings) with the participant's own name, voice, greeting and a persona built from its description.
 * No-input reprompts are off: in a room, silence toward an agent is people talking to each other.
 */
export function roomAgentConfig(tenant: Tenant, room: Room, agent: RoomAgent): { config: AgentConfig; variables: Record<string, string> } {
  const { config, variables } = agentConfigFor(tenant);
  const roomName = room.name ?? 'this room';
  const systemPrompt = [
    `You are ${agent.name}, one participant of a voice conversation with several people in ${roomName}, hosted by ${tenant.displayName}.`,
    `Who you are and what you do: ${agent.description}`,
    "Each person's words come to you as \"Name: what they said\"; other AI participants' words come the same way.",
    `Answer when you are addressed by name or asked something nobody else takes; speak as ${agent.name}, briefly, in plain spoken sentences, and address people by name when it helps.`,
  ].join('\n');
  return {
    config: {
      ...config,
      greeting: agent.greeting ?? `Hi, I'm ${agent.name}.`,
      systemPrompt,
      ...(agent.voice !== undefined ? { voice: agent.voice } : {}),
      maxCallDurationMs: ROOM_AGENT_MAX_MS,
      turn: { ...config.turn, noInputMs: ROOM_AGENT_MAX_MS, maxReprompts: 0 },
    },
    variables: { ...variables, agentName: agent.name },
  };
}

/** The agent names a turn addresses ("Max, what do you think?", "ask Nora"), as given. */
export function addressedTo(text: string, names: readonly string[]): string[] {
  const words = new Set(text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []);
  return names.filter((name) => {
    const parts = name.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    return parts.length > 0 && parts.every((p) => words.has(p));
  });
}

const QUESTION_START = /^(what|when|where|who|whom|whose|which|why|how|can|could|would|will|shall|should|do|does|did|is|are|was|were|have|has|may|might|anyone|anybody)\b/i;

/** A question to whoever answers: a question mark, or the way English questions begin (recognisers often drop the "?"). */
export function looksLikeQuestion(text: string): boolean {
  const t = text.trim();
  return t.endsWith('?') || QUESTION_START.test(t);
}

/** What an agent does with a turn it heard: answer, stay silent, or wait to see whether a person takes the question. */
export type TurnDecision = 'answer' | 'silent' | 'if-unclaimed';

/**
 * The room's policy for one agent and one turn: named agents answer (and only they); with nobody
 * named, the host (the first agent to join) answers every turn under `always`, and under `addressed`
 * only a question, once nobody else has taken it. `never`: agents listen only.
 */
export function decideTurn(t: { policy: 'addressed' | 'always' | 'never'; agent: string; agents: readonly string[]; isHost: boolean; text: string }): TurnDecision {
  if (t.policy === 'never') return 'silent';
  const addressed = addressedTo(t.text, t.agents);
  if (addressed.length > 0) return addressed.includes(t.agent) ? 'answer' : 'silent';
  if (!t.isHost) return 'silent';
  if (t.policy === 'always') return 'answer';
  return looksLikeQuestion(t.text) ? 'if-unclaimed' : 'silent';
}
