import { renderTemplate, templateVariables } from '../../src/util/template.js';
import { tenantSchema, TENANT_TEMPLATE_VARIABLES } from '../../src/tenants/schema.js';
import { check, describeText, shorten, type FuzzTarget } from '../engine.js';
import { INTERESTING_STRINGS, mutateText, randomText, type Rng } from '../mutate.js';

/**
 * Greeting templates (src/util/template.ts) at the sizes the API lets through: a greeting of up to
 * 500 characters, call URL variables of up to 200 characters each. renderTemplate runs while a caller
 * waits, so it must neither throw nor take long; a greeting the tenant schema accepts must render
 * with no variable missing (that is what the save-time check promises).
 */
export interface TemplateCase {
  readonly template: string;
  readonly variables: Readonly<Record<string, string>>;
}

/** The schema's limits (src/tenants/schema.ts): greeting max 500, variable values max 200. */
const MAX_GREETING = 500;
const MAX_VALUE = 200;

const DICTIONARY = ['{{', '}}', '{{name}}', '{{ name }}', '{{name|friend}}', '{{agentName}}', '{{business}}', '{{a.b-c}}', '{{|x}}', '{{name|}}', '|', ', ', '! ', ' ?', '  '];
const NAMES = ['name', 'agentName', 'business', 'first_name', 'a.b-c', '_', 'x'];

export const templateTarget: FuzzTarget<TemplateCase> = {
  name: 'template',
  about: 'renderTemplate and the tenant schema greeting check on mutated greetings (≤500 chars) with call URL variables (≤200 chars each)',
  async open() {
    const seeds = [
      "Hi, I'm {{agentName}} from {{business}}, what can I do for you today?",
      'Hello {{name|there}}, thanks for calling {{business}}.',
      '{{ greeting_word | Hi }}, {{name}}! {{agentName}} here.',
      'Welcome.',
      '{{name}}, {{ name }}, {{name|}}, {{name|a | b}}.',
    ];
    return {
      generate: (rng: Rng) => {
        const template =
          rng.bool(0.9)
            ? mutateText(rng, rng.pick(seeds), { others: seeds, dictionary: DICTIONARY, maxLength: MAX_GREETING, maxRounds: 8 })
            : randomText(rng, rng.length(MAX_GREETING), DICTIONARY).slice(0, MAX_GREETING);
        return { template, variables: randomVariables(rng) };
      },
      run(c: TemplateCase) {
        const used = templateVariables(c.template);
        const rendered = renderTemplate(c.template, c.variables);
        check(typeof rendered.text === 'string' && rendered.text === rendered.text.trim(), 'rendered text is not trimmed');
        for (const name of rendered.missing) {
          check(used.includes(name), `missing ${name} is not a variable of the template`);
          check(!Object.hasOwn(c.variables, name) || c.variables[name] === '', `${name} reported missing but the call has it`);
        }
        // The save-time check: a greeting the tenant schema accepts renders with nothing missing.
        const saved = tenantSchema.safeParse({ id: 'fuzz', displayName: 'Fuzz', greeting: c.template });
        if (!saved.success) return 'rejected';
        const own = Object.fromEntries(TENANT_TEMPLATE_VARIABLES.map((v) => [v, v]));
        const atCall = renderTemplate(c.template, own);
        check(atCall.missing.length === 0, `accepted greeting renders with ${atCall.missing.join(', ')} missing`);
        return 'accepted';
      },
      isTyped: () => false,
      describe: (c: TemplateCase) =>
        `${describeText(c.template)} with ${shorten(JSON.stringify(Object.fromEntries(Object.entries(c.variables).map(([k, v]) => [k, v.length > 20 ? `${v.slice(0, 20)}…(${v.length})` : v]))), 300)}`,
    };
  },
};

function randomVariables(rng: Rng): Record<string, string> {
  const out: Record<string, string> = {};
  const n = rng.int(6);
  for (let i = 0; i < n; i++) {
    const name = rng.bool(0.8) ? rng.pick(NAMES) : randomText(rng, rng.length(10));
    out[name] = rng.pick<() => string>([
      () => '',
      () => 'Sam',
      () => rng.pick(INTERESTING_STRINGS).repeat(rng.length(MAX_VALUE)).slice(0, MAX_VALUE),
      () => ' '.repeat(rng.length(MAX_VALUE)),
      () => ',.!?;: '.repeat(40).slice(0, rng.length(MAX_VALUE)),
      () => '{{name}}',
      () => randomText(rng, rng.length(MAX_VALUE)).slice(0, MAX_VALUE),
    ])();
  }
  return out;
}
