/**
 * The Contact header of a REGISTER (RFC 3261 §20.10, §10.2): `*`, or contacts separated by commas,
 * each a name-addr (`"Desk" <sip:alice@10.0.0.5:5060;transport=tcp>;expires=60`) or a bare URI
 * (`sip:alice@10.0.0.5;expires=60`, where everything after the first `;` is a header parameter, not
 * part of the URI). Written here because the registrar needs only this and drachtio-srf's parser
 * has no `*`.
 */
export interface ParsedContact {
  /** The URI without the header's parameters. */
  readonly uri: string;
  /** The `expires` parameter in seconds, when present and a number. */
  readonly expires?: number;
  /** `+sip.instance` (RFC 5626), unquoted: the same phone across Contact changes. */
  readonly instance?: string;
}

/** Why a Contact header could not be read. */
export class ContactSyntaxError extends Error {
  override name = 'ContactSyntaxError';
}

/** Most contacts one REGISTER may carry: more is not a phone. */
export const MAX_CONTACTS_PER_REGISTER = 10;

/** `'*'`, the contacts, or an empty list when the header is absent (a query for the bindings). */
export function parseContacts(header: string | undefined): '*' | ParsedContact[] {
  if (header === undefined || header.trim() === '') return [];
  const parts = splitTopLevel(header);
  if (parts.length === 1 && parts[0]!.trim() === '*') return '*';
  if (parts.length > MAX_CONTACTS_PER_REGISTER) throw new ContactSyntaxError(`more than ${MAX_CONTACTS_PER_REGISTER} contacts`);
  return parts.map(parseOne);
}

function parseOne(raw: string): ParsedContact {
  const text = raw.trim();
  if (text === '*') throw new ContactSyntaxError('* with other contacts');
  let uri: string;
  let params: string;
  const open = text.indexOf('<');
  if (open !== -1) {
    const close = text.indexOf('>', open);
    if (close === -1) throw new ContactSyntaxError('unclosed <');
    uri = text.slice(open + 1, close).trim();
    params = text.slice(close + 1);
  } else {
    const semi = text.indexOf(';');
    uri = (semi === -1 ? text : text.slice(0, semi)).trim();
    params = semi === -1 ? '' : text.slice(semi);
  }
  if (!/^sips?:[^\s<>"]+$/i.test(uri)) throw new ContactSyntaxError('not a SIP URI');
  let expires: number | undefined;
  let instance: string | undefined;
  for (const param of splitParams(params)) {
    const eq = param.indexOf('=');
    const name = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? '' : param.slice(eq + 1).trim();
    if (name === 'expires') {
      if (!/^\d{1,10}$/.test(value)) throw new ContactSyntaxError('expires is not a number');
      expires = Number(value);
    } else if (name === '+sip.instance') {
      instance = value.replace(/^"(.*)"$/, '$1');
    }
  }
  return { uri, ...(expires === undefined ? {} : { expires }), ...(instance ? { instance } : {}) };
}

/** Splits at commas outside quotes and angle brackets. */
function splitTopLevel(header: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') depth++;
    else if (!quoted && c === '>') depth = Math.max(0, depth - 1);
    else if (!quoted && depth === 0 && c === ',') {
      out.push(header.slice(start, i));
      start = i + 1;
    }
  }
  out.push(header.slice(start));
  if (quoted || depth !== 0) throw new ContactSyntaxError('unbalanced quotes or brackets');
  return out.filter((p) => p.trim() !== '');
}

/** `;a=1;b="x;y"` → ['a=1', 'b="x;y"']. */
function splitParams(params: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let current = '';
  for (const c of params) {
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      if (current.trim()) out.push(current);
      current = '';
    } else current += c;
  }
  if (current.trim()) out.push(current);
  return out;
}
