import { describe, expect, it } from 'vitest';
import { renderTemplate, templateVariables } from './template.js';

describe('renderTemplate', () => {
  it('fills variables, with spaces inside the braces allowed', () => {
    expect(renderTemplate('Hi {{name}}, welcome to {{ company }}.', { name: 'Ann', company: 'Acme' })).toEqual({
      text: 'Hi Ann, welcome to Acme.',
      missing: [],
    });
  });

  it('uses the fallback when the variable is absent or empty, and does not report it', () => {
    expect(renderTemplate('Hi {{name|there}}! Welcome to {{company | our office }}.', { name: '' })).toEqual({
      text: 'Hi there! Welcome to our office.',
      missing: [],
    });
    // An empty fallback is a deliberate "say nothing", not a missing variable.
    expect(renderTemplate('Hello {{name|}}!', {})).toEqual({ text: 'Hello!', missing: [] });
  });

  it('renders a variable with neither value nor fallback as nothing and reports it, once per use', () => {
    expect(renderTemplate('Hi {{name}}, your code is {{code}} and {{code}}.', { other: 'x' })).toEqual({
      text: 'Hi, your code is and.',
      missing: ['name', 'code', 'code'],
    });
  });

  it('does not take values from the object prototype', () => {
    expect(renderTemplate('Hi {{constructor}} {{toString|friend}}.', {})).toEqual({ text: 'Hi friend.', missing: ['constructor'] });
  });

  it('inserts values literally: no $-patterns, no second expansion', () => {
    expect(renderTemplate('You owe {{amount}}. {{x}}', { amount: '$& 5 $1', x: '{{amount}}' }).text).toBe('You owe $& 5 $1. {{amount}}');
  });

  it('accepts dotted and dashed names, leaves malformed placeholders alone', () => {
    expect(renderTemplate('{{caller.first-name}} {{1bad}} {{}}', { 'caller.first-name': 'Bo' }).text).toBe('Bo {{1bad}} {{}}');
  });

  it.each([
    ['Hi {{name}} , thanks for calling .', 'Hi, thanks for calling.'],
    ['Hello,   {{name}}   and welcome', 'Hello, and welcome'],
    ['Hello, {{name}}!', 'Hello!'],
    ['Welcome: {{name}}.', 'Welcome.'],
    ['Hello {{name}}; how are you?', 'Hello; how are you?'],
    ['{{name}}, welcome to Acme.', 'welcome to Acme.'],
    ['  {{name}}  ', ''],
  ])('cleans up what a dropped variable leaves: %j', (template, text) => {
    expect(renderTemplate(template, {}).text).toBe(text);
  });

  it('leaves a template without placeholders as written', () => {
    expect(renderTemplate('Press 1, 2, or 3. Opening hours are 9:30 to 17:00!', {})).toEqual({
      text: 'Press 1, 2, or 3. Opening hours are 9:30 to 17:00!',
      missing: [],
    });
  });
});

describe('templateVariables', () => {
  it('lists the names a template uses, in order, with or without fallbacks', () => {
    expect(templateVariables('Hi {{name|there}}, {{ company }} calls {{caller.id}}.')).toEqual(['name', 'company', 'caller.id']);
    expect(templateVariables('No placeholders {here}.')).toEqual([]);
  });
});
