/** Text or an attribute value made safe inside HTML: the five characters that could end either, as character references. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
