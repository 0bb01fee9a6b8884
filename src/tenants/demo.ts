import { fileURLToPath } from 'node:url';
import { CallgateError } from '../errors.js';
import { checkDialplans, formatProblem } from './dialplan.js';
import { loadDialplans, type DialplanStores, type LoadSummary } from './dialplanLoad.js';

/** The demo tenant's dialplan (Ava of Joe's Pizza, /c/demo), shipped with the repository. */
export const DEMO_DIALPLAN = fileURLToPath(new URL('../../dialplans/demo.yaml', import.meta.url));

export interface DemoSeedOptions {
  /** The providers a new demo tenant gets: what the environment configures (`demoProviders`). */
  readonly providers?: { readonly stt: string; readonly llm: string; readonly tts: string };
  /** The SIP door is open: the demo's test number and its loopback trunk are made too. */
  readonly sip?: boolean;
}

/**
 * Makes the demo tenant (Ava of Joe's Pizza, /c/demo) when it is absent, and only then: what is there
 * already — the demo as an operator changed it, or anything of the same name on a shared Redis — is
 * left exactly as it is. A new demo gets the providers the environment configures (`demoProviders` in
 * src/agent/cloudProviders.ts); keys are not written, the registry reads them from the environment per
 * call. Its trunk trusts 127.0.0.1, so it and the number pinned to it are made only with the SIP door
 * open, where they are what lets a local SIP phone call the demo.
 */
export async function seedDemoTenant(stores: DialplanStores, options: DemoSeedOptions = {}): Promise<LoadSummary> {
  const checked = await checkDialplans([DEMO_DIALPLAN]);
  if (!checked.ok) throw new CallgateError('CG_CONFIG_INVALID', `demo dialplan: ${checked.problems.map(formatProblem).join('; ')}`);
  const { providers, sip = false } = options;
  const dialplans = checked.dialplans.map((d) => ({
    ...d,
    dialplan: {
      ...d.dialplan,
      trunks: sip ? d.dialplan.trunks : [],
      tenants: d.dialplan.tenants.map((t) => ({ ...t, ...(providers ? { providers: { ...t.providers, ...providers } } : {}), numbers: sip ? t.numbers : [] })),
    },
  }));
  return loadDialplans(dialplans, stores, { onlyMissing: true });
}
