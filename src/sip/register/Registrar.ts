import type { Logger } from 'pino';
import { isCallgateError } from '../../errors.js';
import { StaleRegistration, type Binding, type BindingSource, type BindingsNow, type ContactChange, type DeviceBindingStore } from '../../tenants/DeviceBindingStore.js';
import { stripUndefined } from '../../util/options.js';
import { parseDigestAuthorization } from '../invite/DigestAuth.js';
import { userOf } from '../invite/InviteRequest.js';
import { checkDigestAnswer, type DeviceDirectory, type DigestDeps } from '../invite/steps.js';
import { SipError, sipErrorFrom } from '../SipError.js';
import { ContactSyntaxError, parseContacts } from './contacts.js';

/**
 * The registrar (RFC 3261 §10): a device's REGISTER, digest-checked against the tenant's devices with
 * the same lockouts as INVITEs, binds its contacts in Redis (src/tenants/DeviceBindingStore.ts), where
 * every gateway finds them to call the device. Each binding keeps the address and port the REGISTER
 * really came from beside the Contact the phone wrote: behind NAT the Contact names a private address,
 * and calls go to the public one (the "received"/"rport" of RFC 3581, kept by the registrar since the
 * phone does not rewrite its Contact).
 */
export interface RegistrarOptions {
  /** Shortest registration accepted; a shorter one is answered 423 Interval Too Brief with Min-Expires. */
  readonly minExpiresS: number;
  /** Longest registration granted; a longer one is shortened to this (the 200 says how long). */
  readonly maxExpiresS: number;
  /** When the REGISTER names no expiry (neither the contact's `expires` nor an Expires header). */
  readonly defaultExpiresS: number;
}

export const defaultRegistrarOptions = {
  /** 60 s, RFC 3261 §10.2.1.1's floor: a binding refreshed more often costs a digest round trip each time for nothing. */
  minExpiresS: 60,
  /** 1 hour: a phone that vanished stops being rung within the hour; phones behind NAT refresh sooner anyway. */
  maxExpiresS: 3600,
  /** 1 hour, RFC 3261 §10.2.1.1's suggested default. */
  defaultExpiresS: 3600,
} as const satisfies RegistrarOptions;

export interface RegistrarDeps extends DigestDeps {
  readonly devices: DeviceDirectory;
  readonly bindings: DeviceBindingStore;
  readonly logger: Logger;
}

/** What the registrar reads from a REGISTER (drachtio-srf's request is adapted to this in SipGateway). */
export interface RegisterRequest {
  readonly callId: string;
  /** Request-URI: the digest answer's `uri` must name it. */
  readonly uri: string;
  /** The To header: the address of record, whose user must be the digest username. */
  readonly to: string;
  readonly cseq: number;
  /** The Contact header(s), joined with commas; undefined: a query for the current bindings. */
  readonly contact: string | undefined;
  readonly expires: string | undefined;
  readonly authorization: string | undefined;
  readonly userAgent: string | undefined;
  /** Where the packet came from. */
  readonly source: BindingSource;
}

/** The final response to send. */
export interface RegisterAnswer {
  readonly status: number;
  readonly reason: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The device's username and tenant once proven (for logs and metrics). */
  readonly device?: { readonly username: string; readonly tenantId: string };
}

export class Registrar {
  readonly options: RegistrarOptions;

  constructor(
    private readonly deps: RegistrarDeps,
    options: Partial<RegistrarOptions> = {},
  ) {
    this.options = { ...defaultRegistrarOptions, ...stripUndefined(options) };
    const { minExpiresS, maxExpiresS, defaultExpiresS } = this.options;
    if (!(minExpiresS >= 1 && maxExpiresS >= minExpiresS && defaultExpiresS >= minExpiresS && defaultExpiresS <= maxExpiresS)) {
      throw new RangeError(`Registrar: 1 ≤ minExpiresS ≤ defaultExpiresS ≤ maxExpiresS (got ${minExpiresS}, ${defaultExpiresS}, ${maxExpiresS})`);
    }
  }

  /** The answer to one REGISTER; never throws (a failure is its SIP response). */
  async handle(r: RegisterRequest, now: number = Date.now()): Promise<RegisterAnswer> {
    try {
      return await this.#handle(r, now);
    } catch (err) {
      if (err instanceof StaleRegistration) return answer(500, 'Server Internal Error', { 'Retry-After': '1' });
      if (err instanceof ContactSyntaxError) return answer(400, 'Bad Request');
      const sip = sipErrorFrom(err);
      if (sip.code === 'CG_INTERNAL' && !(err instanceof SipError)) this.deps.logger.warn({ callId: r.callId, err: err instanceof Error ? err.stack : String(err) }, 'REGISTER failed');
      if (isCallgateError(err) && err.code === 'CG_DEVICE_NOT_FOUND') return answer(404, 'Not Found');
      return answer(sip.status, sip.reason, sip.headers);
    }
  }

  async #handle(r: RegisterRequest, now: number): Promise<RegisterAnswer> {
    const { deps } = this;
    const creds = parseDigestAuthorization(r.authorization);
    if (!creds) throw deps.digest.challenge(now);
    const device = await deps.devices.forAuth(creds.username);
    // The address of record must be the device's own: a device may not bind contacts for another.
    const mayRegister = device !== undefined && userOf(r.to) === creds.username;
    await checkDigestAnswer({ method: 'REGISTER', requestUri: r.uri, creds, source: r.source.address }, mayRegister ? device.password : undefined, deps, now);
    const proven = { username: device!.username, tenantId: device!.tenantId };
    const log = deps.logger.child({ callId: r.callId, tenant: proven.tenantId, device: proven.username });
    const contacts = parseContacts(r.contact);
    const headerExpires = r.expires === undefined ? undefined : parseExpires(r.expires);
    let result: BindingsNow;
    if (contacts === '*') {
      // RFC 3261 §10.3 step 6: `*` only with Expires: 0, and alone.
      if (headerExpires !== 0) return answer(400, 'Bad Request');
      result = await deps.bindings.register({ username: proven.username, callId: r.callId, cseq: r.cseq, contacts: '*', source: r.source, ...optional('userAgent', r.userAgent) });
      log.info({ source: `${r.source.address}:${r.source.port}` }, 'device unregistered every contact');
    } else if (contacts.length === 0) {
      result = await deps.bindings.bindings(proven.username);
    } else {
      const changes: ContactChange[] = [];
      for (const c of contacts) {
        const asked = c.expires ?? headerExpires ?? this.options.defaultExpiresS;
        if (asked > 0 && asked < this.options.minExpiresS) return answer(423, 'Interval Too Brief', { 'Min-Expires': String(this.options.minExpiresS) });
        changes.push({ contact: c.uri, expiresS: Math.min(asked, this.options.maxExpiresS), ...optional('instance', c.instance) });
      }
      const before = new Set((await deps.bindings.bindings(proven.username)).bindings.map((b) => b.key));
      result = await deps.bindings.register({ username: proven.username, callId: r.callId, cseq: r.cseq, contacts: changes, source: r.source, ...optional('userAgent', r.userAgent?.slice(0, 200)) });
      const after = new Set(result.bindings.map((b) => b.key));
      const changed = before.size !== after.size || [...after].some((k) => !before.has(k));
      const fields = { source: `${r.source.transport}:${r.source.address}:${r.source.port}`, contacts: result.bindings.length, expiresS: changes.map((c) => c.expiresS) };
      if (changed) log.info(fields, changes.every((c) => c.expiresS === 0) ? 'device unregistered' : 'device registered');
      else log.debug(fields, 'device registration refreshed');
    }
    return { ...answer(200, 'OK', { ...contactHeader(result), Date: new Date(now).toUTCString() }), device: proven };
  }
}

function answer(status: number, reason: string, headers: Readonly<Record<string, string>> = {}): RegisterAnswer {
  return { status, reason, headers };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function parseExpires(value: string): number {
  if (!/^\s*\d{1,10}\s*$/.test(value)) throw new ContactSyntaxError('Expires is not a number');
  return Number(value);
}

/** The 200's Contact: every current binding with the seconds it has left (RFC 3261 §10.3 step 8). */
function contactHeader(result: BindingsNow): Record<string, string> {
  if (result.bindings.length === 0) return {};
  return { Contact: result.bindings.map((b: Binding) => `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - result.now) / 1000))}`).join(', ') };
}
