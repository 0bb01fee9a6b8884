import { stringify } from 'yaml';
import { checkDialplanText } from '../../src/tenants/dialplan.js';
import { agentConfigFor } from '../../src/tenants/TenantStore.js';
import { check, describeText, type FuzzTarget } from '../engine.js';
import { mutateText, randomText, seedOrMutant, type Rng } from '../mutate.js';
import { dialplanFiles } from '../seeds.js';

/**
 * The dialplan check (src/tenants/dialplan.ts): YAML text → validated tenants, call URLs, numbers and
 * trunks, or a list of problems with file:line:column. It reports problems rather than throwing, so
 * any throw is a crash (a raw YAML or zod error included). A tenant it accepts must also resolve to
 * the agent config a call would run with (agentConfigFor), or the file loads a tenant no call can use.
 */
export const dialplanTarget: FuzzTarget<string> = {
  name: 'dialplan',
  about: 'checkDialplanText on mutated dialplans (dialplans/*.yaml and generated variants: flow style, anchors, merge keys, tags); accepted tenants must resolve with agentConfigFor',
  async open() {
    const seeds = dialplanSeeds();
    return {
      generate: (rng: Rng) =>
        seedOrMutant(
          rng,
          seeds,
          (seed) => mutateText(rng, seed, { others: seeds, dictionary: YAML_DICTIONARY, maxLength: MAX_TEXT }),
          () => randomText(rng, rng.length(2000), YAML_DICTIONARY),
        ),
      run(text: string) {
        const result = checkDialplanText(text, 'fuzz.yaml');
        if (!result.dialplan) {
          check(result.problems.length > 0, 'neither a dialplan nor a problem');
          for (const p of result.problems) {
            check(Number.isInteger(p.line) && p.line >= 0 && Number.isInteger(p.column) && p.column >= 0, `problem at ${p.line}:${p.column}`);
            check(typeof p.message === 'string' && p.message.length > 0, 'problem without a message');
          }
          return 'rejected';
        }
        check(result.problems.length === 0, 'a dialplan returned with problems');
        for (const tenant of result.dialplan.tenants) agentConfigFor(tenant);
        return 'accepted';
      },
      // A tenant the check accepted but agentConfigFor refuses is a broken promise, not a typed refusal.
      isTyped: () => false,
      describe: (text: string) => describeText(text, 600),
    };
  },
};

/**
 * 16 KiB: twice a large real dialplan. Past that the run only measures the yaml library, whose error
 * path costs ~15 µs a character (a 32 KiB file of one error per line takes ~0.5 s of CPU).
 */
const MAX_TEXT = 16 * 1024;

const YAML_DICTIONARY = [
  'tenants:',
  'trunks:',
  '- id: ',
  '  displayName: ',
  '  greeting: ',
  '  intents:',
  '    - name: x\n      phrases: [a]\n      reply: b\n',
  '  callUrls:',
  '  numbers:',
  '    - number: "+15005550100"',
  '  sourceCidrs: [10.0.0.0/8]',
  'maxConcurrentCalls: ',
  '&a ',
  '*a',
  '<<: *a',
  '!!str ',
  '!!int ',
  '!!binary ',
  '!!timestamp ',
  '!!set ',
  '!!omap ',
  '!custom ',
  '? ',
  '---\n',
  '...\n',
  '%YAML 1.2\n',
  '%TAG ! tag:x,2000:\n',
  '|\n  ',
  '>-\n  ',
  '{',
  '}',
  '[',
  ']',
  '"\\u0000"',
  '"\\x',
  '~',
  'null',
  '.inf',
  '.nan',
  '0x1F',
  '0o17',
  '1e400',
  '__proto__: ',
  'constructor: ',
  '  ',
];

/** The repository's dialplans and variants of them the YAML grammar allows. */
function dialplanSeeds(): string[] {
  const files = dialplanFiles();
  const tenant = {
    id: 'acme',
    displayName: 'Acme Plumbing',
    agentName: 'Max',
    greeting: 'Hello, {{agentName}} at {{business}} for {{name|you}}.',
    voice: 'kal',
    language: 'en-GB',
    providers: { stt: ['deepgram', 'pocketsphinx'], llm: 'scripted', tts: 'flite', models: { llm: 'small' } },
    turn: { endpointingMs: 700, bargeIn: false, noInputMs: 8000, maxReprompts: 2 },
    intents: [
      { name: 'hours', phrases: ['when are you open'], reply: 'Nine to five.', dtmf: '1' },
      { name: 'emergency', reply: 'Connecting you now.', dtmf: '9*' },
    ],
    fallbackReply: 'Sorry?',
    goodbye: { phrases: ['bye'], reply: 'Bye!' },
    maxCallDurationMs: 600_000,
    maxConcurrentCalls: 3,
    callUrls: [{ slug: 'acme-web', variables: { name: 'friend' }, maxUses: 10, allowedOrigins: ['https://acme.example'], expiresAt: '2030-01-01T00:00:00Z' }],
    numbers: [{ number: '+14155550100', trunk: 'carrier-a' }, { number: 'sip:support@acme.example' }],
  };
  const trunks = [
    { name: 'carrier-a', sourceCidrs: ['203.0.113.0/24', '2001:db8::/32'], auth: { username: 'gw', password: 'long-enough-secret' } },
    { name: 'carrier-b', sourceCidrs: ['198.51.100.7/32'], outbound: { host: 'sip.carrier.example', port: 5080, transport: 'tcp', callerId: '+14155550199' } },
  ];
  const doc = { tenants: [tenant], trunks };
  return [
    ...files,
    stringify(doc),
    stringify(doc, { collectionStyle: 'flow' }),
    stringify({ trunks }, { defaultStringType: 'QUOTE_DOUBLE' }),
    [
      'defaults: &defaults',
      '  agentName: Ava',
      '  maxConcurrentCalls: 2',
      'tenants:',
      '  - <<: *defaults',
      '    id: one',
      '    displayName: One',
      '  - <<: *defaults',
      '    id: two',
      '    displayName: "Two \\u00e9"',
      '    greeting: |',
      '      Hi from {{business}}.',
      '      How can {{agentName}} help?',
      '',
    ].join('\n'),
    'tenants: []\ntrunks: []\n',
  ];
}
