import { fileURLToPath } from 'node:url';
import { CallgateError } from '../errors.js';
import { checkDialplans, formatProblem } from './dialplan.js';
import { loadDialplans, type DialplanStores, type LoadSummary } from './dialplanLoad.js';

/** The demo tenant's dialplan (Ava of Joe's Pizza, /c/demo), shipped with the repository. */
export const DEMO_DIALPLAN = fileURLToPath(new URL('../../dialplans/demo.yaml', import.meta.url));

/**
 * Writes the demo tenant (idempotently, like `npm run dialplans -- load`), with its providers replaced
 * by `providers` when given: the gateway passes what the environment configures (`demoProviders` in
 * src/agent/cloudProviders.ts), so setting OPENAI_API_KEY and starting again is all it takes to hear the
 * demo on a real model. Keys are not written: the registry reads them from the environment per call.
 */
export async function seedDemoTenant(stores: DialplanStores, providers?: { readonly stt: string; readonly llm: string; readonly tts: string }): Promise<LoadSummary> {
  const checked = await checkDialplans([DEMO_DIALPLAN]);
  if (!checked.ok) throw new CallgateError('CG_CONFIG_INVALID', `demo dialplan: ${checked.problems.map(formatProblem).join('; ')}`);
  const dialplans = providers
    ? checked.dialplans.map((d) => ({ ...d, dialplan: { ...d.dialplan, tenants: d.dialplan.tenants.map((t) => (t.id === 'demo' ? { ...t, providers: { ...t.providers, ...providers } } : t)) } }))
    : checked.dialplans;
  return loadDialplans(dialplans, stores);
}
