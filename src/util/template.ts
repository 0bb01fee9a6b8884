/**
 * Renders a greeting template: `{{name}}` takes the call's variable, `{{name|fallback}}` uses the
 * fallback when the call has none. A variable with neither renders as nothing and is reported, so
 * the caller still hears a greeting (an operator's typo must not fail live calls; the API validates
 * templates when they are saved).
 */
export interface RenderedTemplate {
  readonly text: string;
  /** Variables the template named that the call did not have and that had no fallback. */
  readonly missing: readonly string[];
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.-]*)\s*(?:\|([^}]*))?\}\}/g;

export function renderTemplate(template: string, variables: Readonly<Record<string, string>>): RenderedTemplate {
  const missing: string[] = [];
  const text = template.replace(PLACEHOLDER, (_, name: string, fallback: string | undefined) => {
    const value = Object.hasOwn(variables, name) ? variables[name] : undefined;
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback.trim();
    missing.push(name);
    return '';
  });
  // A dropped variable leaves doubled spaces, a space before punctuation, a clause mark with nothing after
  // it ("Hello, !") or punctuation opening the greeting; speech engines read none of them well.
  const cleaned = text
    .replace(/\s+([,.!?;:])/g, '$1')
    .replace(/[,;:]+(?=[,.!?;:])/g, '')
    .replace(/^[\s,.!?;:]+/, '')
    .replace(/\s{2,}/g, ' ')
    .trim();
  return { text: cleaned, missing };
}

/** The variable names a template uses (for validation when a tenant saves it). */
export function templateVariables(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}
