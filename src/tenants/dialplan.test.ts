import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDialplanText, checkDialplans, formatProblem } from './dialplan.js';

const DEMO = new URL('../../dialplans/demo.yaml', import.meta.url).pathname;

describe('dialplans', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'callgate-dialplans-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  it('the shipped demo dialplan is valid: Ava of Joe\'s Pizza, /c/demo, a test number, offline providers', async () => {
    const result = await checkDialplans([DEMO]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const tenant = result.dialplans[0]!.dialplan.tenants[0]!;
    expect(tenant).toMatchObject({ id: 'demo', displayName: "Joe's Pizza", agentName: 'Ava', providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' } });
    expect(tenant.intents!.map((i) => i.name)).toEqual(['opening-hours', 'book-table']);
    expect(tenant.callUrls.map((u) => u.slug)).toEqual(['demo']);
    expect(tenant.numbers[0]!.number).toMatch(/^\+\d+$/);
  });

  it('reports each problem at its file, line and column, with the path and what is wrong', () => {
    const text = [
      'tenants:', //                                  1
      '  - id: Bad_Id', //                            2
      '    displayName: Test', //                     3
      '    greting: typo', //                         4
      '    greeting: "Hi {{who}}"', //                5
      '    intents:', //                              6
      '      - name: a', //                           7
      '        reply: r', //                          8
      '    numbers:', //                              9
      '      - number: "12345"', //                   10
      '    turn: { endpointingMs: 50 }', //           11
    ].join('\n');
    const { problems } = checkDialplanText(text, 'bad.yaml');
    const lines = problems.map(formatProblem);
    expect(lines).toContain('bad.yaml:2:9: tenants.0.id: lower-case letters, digits and dashes, starting with a letter or digit');
    // An unknown field is named by its own path and pointed at by its key.
    expect(lines).toContain('bad.yaml:4:5: tenants.0.greting: is not a known field');
    expect(lines.find((l) => l.startsWith('bad.yaml:5:15: tenants.0.greeting: template uses {{who}}'))).toBeDefined();
    expect(lines).toContain('bad.yaml:7:9: tenants.0.intents.0.phrases: an intent needs phrases or a dtmf key');
    expect(lines).toContain('bad.yaml:10:17: tenants.0.numbers.0.number: an E.164 number (+ and 7–15 digits) or a SIP URI (sip:user@host)');
    expect(lines).toContain('bad.yaml:11:28: tenants.0.turn.endpointingMs: Too small: expected number to be >=200');
  });

  it('reports YAML syntax errors with their position, and refuses unknown top-level keys', () => {
    expect(checkDialplanText('tenants:\n  - id: a\n   displayName: [x', 'syntax.yaml').problems[0]).toMatchObject({ file: 'syntax.yaml', line: 3 });
    const dup = checkDialplanText('tenants: []\ntenants: []\n', 'dup.yaml').problems;
    expect(dup[0]!.line).toBe(2);
    expect(checkDialplanText('tennants: []\n', 'typo.yaml').problems.map(formatProblem)).toEqual(['typo.yaml:1:1: tennants: is not a known field']);
    // …at every level, not only the top: a typo inside `turn` or a trunk's `auth` is not dropped.
    const nested = checkDialplanText(
      'tenants:\n  - id: a\n    displayName: A\n    turn:\n      bargein: false\ntrunks:\n  - name: t\n    sourceCidrs: [10.0.0.0/8]\n    auth: { username: u, password: long-enough, realm: x }\n',
      'nested.yaml',
    ).problems.map(formatProblem);
    expect(nested).toEqual(['nested.yaml:5:7: tenants.0.turn.bargein: is not a known field', 'nested.yaml:9:49: trunks.0.auth.realm: is not a known field']);
  });

  it('checks across files: duplicates point at the first declaration, numbers need a declared trunk', async () => {
    const a = await file('a.yaml', 'trunks:\n  - name: carrier\n    sourceCidrs: [203.0.113.0/24]\n    tenants: [shop]\ntenants:\n  - id: shop\n    displayName: Shop\n    numbers:\n      - number: "+15550001111"\n        trunk: carrier\n');
    const b = await file('b.yaml', 'tenants:\n  - id: shop\n    displayName: Shop again\n    numbers:\n      - number: "+15550001111"\n      - number: "+15550002222"\n        trunk: nobody\n');
    const result = await checkDialplans([a, b]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const lines = result.problems.map(formatProblem);
    expect(lines).toEqual([
      `${b}:2:9: tenants.0.id: tenant 'shop' is already declared at ${a}:6`,
      `${b}:5:17: tenants.0.numbers.0.number: number '+15550001111' is already declared at ${a}:9`,
      `${b}:7:16: tenants.0.numbers.1.trunk: trunk 'nobody' is not declared in ${a}, ${b}`,
    ]);
  });

  it("refuses a number pinned to a trunk that does not list the number's tenant (as the API does)", async () => {
    const text = (tenants: string) =>
      `trunks:\n  - name: carrier\n    sourceCidrs: [203.0.113.0/24]\n${tenants}tenants:\n  - id: shop\n    displayName: Shop\n    numbers:\n      - number: "+15550001111"\n        trunk: carrier\n`;
    const none = await file('none.yaml', text(''));
    const other = await file('other.yaml', text('    tenants: [someone-else]\n'));
    for (const f of [none, other]) {
      const result = await checkDialplans([f]);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems.map(formatProblem)).toEqual([expect.stringMatching(/tenants\.0\.numbers\.0\.trunk: trunk 'carrier' does not list tenant 'shop' in its tenants$/)]);
    }
    for (const listed of ['    tenants: [shop]\n', "    tenants: ['*']\n"]) expect((await checkDialplans([await file('ok.yaml', text(listed))])).ok).toBe(true);
  });

  // Found by the fuzzer (npm run fuzz -- --target dialplan): the yaml library threw these instead of
  // reporting them, and deep nesting could abort the whole process from inside V8's regexp compiler.
  it('reports YAML the parser cannot take as problems: an unresolved alias, nesting past MAX_NESTING', () => {
    const problem = (text: string): string => {
      const result = checkDialplanText(text, 'bad.yaml');
      expect(result.dialplan).toBeUndefined();
      return formatProblem(result.problems[0]!);
    };
    // toJS() threw ReferenceError for an alias whose anchor the parser did not keep.
    expect(problem('8z6]H@r?<<: *a')).toBe('bad.yaml:1:1: the YAML could not be read: Unresolved alias (the anchor must be set before the alias): a');
    expect(problem('tenants: *nobody\n')).toMatch(/Unresolved alias/);
    // This sequence of parses ended in "FATAL ERROR: RegExpCompiler Allocation failed" (the test process died).
    for (const sep of ['-  ', '- ']) {
      for (const n of [1000, 3000, 5000]) {
        expect(problem(`tenants:\n  - ${sep.repeat(n)}id: x\n`)).toMatch(/nest up to \d+ levels deep.*at most 100/);
        expect(problem(`${sep.repeat(n)}x\n`)).toMatch(/nest up to/);
      }
    }
    expect(problem('['.repeat(1000) + ']'.repeat(1000))).toMatch(/nest up to 1001 levels/);
    expect(problem(Array.from({ length: 150 }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1\n')).toMatch(/nest up to 150 levels/);
    // Nesting a real dialplan could have is read as usual.
    expect(checkDialplanText(`tenants: ${'['.repeat(90)}${']'.repeat(90)}\n`, 'ok.yaml').problems[0]!.message).toMatch(/expected object/);
  });

  it('a missing file is a problem, not a crash', async () => {
    const result = await checkDialplans([join(dir, 'nope.yaml')]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.message).toMatch(/^cannot read/);
  });
});
