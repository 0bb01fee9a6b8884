import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { Binding } from '../../tenants/DeviceBindingStore.js';
import { devicePatchSchema, deviceSchema, type Device, type DeviceInput, type DevicePatch } from '../../tenants/DeviceStore.js';
import { jsonSchema, objectSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

/**
 * A tenant's SIP devices (docs/devices.md): desk phones and softphones that REGISTER with digest
 * credentials, call the tenant's numbers and can be called (`POST /v1/tenants/:id/calls {"device"}`).
 * The tenant's own objects: its API keys may manage them. The password is write-only.
 */
const registration = objectSchema('Where the device registered from', {
  contact: { type: 'string', description: 'The Contact URI the phone registered' },
  source: { type: 'string', description: 'transport:address:port the REGISTER came from (calls go there, for phones behind NAT)' },
  expiresInS: { type: 'integer' },
  registeredAt: { type: 'string', format: 'date-time' },
  userAgent: { type: 'string' },
});
const deviceOut = objectSchema('A device; its password is never shown', {
  username: { type: 'string' },
  tenantId: { type: 'string' },
  displayName: { type: 'string' },
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' },
  registrations: { type: 'array', items: registration },
});
const tags = ['devices'];
const deviceParams = params('id', 'username');

/** What the API shows of a binding: no Call-ID or CSeq (SIP bookkeeping), the expiry as seconds left. */
export interface RegistrationView {
  readonly contact: string;
  readonly source: string;
  readonly expiresInS: number;
  readonly registeredAt: string;
  readonly userAgent?: string;
}

function view(b: Binding, now: number): RegistrationView {
  return {
    contact: b.contact,
    source: `${b.source.transport}:${b.source.address}:${b.source.port}`,
    expiresInS: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
    registeredAt: new Date(b.registeredAt).toISOString(),
    ...(b.userAgent === undefined ? {} : { userAgent: b.userAgent }),
  };
}

export function deviceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { devices, bindings, tenants } = ctx;
  const withRegistrations = async (device: Device): Promise<Device & { registrations: RegistrationView[] }> => {
    const now = await bindings.bindings(device.username);
    return { ...device, registrations: now.bindings.map((b) => view(b, now.now)) };
  };

  app.post('/v1/tenants/:id/devices', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Create a SIP device (username unique across the gateway; the password is stored encrypted and never shown)',
      params: params('id'),
      body: jsonSchema(deviceSchema),
      response: responses({ 201: deviceOut }),
    },
    handler: async (request, reply) => {
      const created = await devices.create(param(request, 'id'), objectBody(request) as DeviceInput);
      return reply.status(201).send({ ...created, registrations: [] });
    },
  });
  app.get('/v1/tenants/:id/devices', {
    config: { access: 'tenant' },
    schema: { tags, summary: "List the tenant's devices with their current registrations", params: params('id'), response: responses({ 200: { type: 'array', items: deviceOut } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      if (!(await tenants.exists(id))) throw tenantNotFound(id);
      return Promise.all((await devices.list(id)).map(withRegistrations));
    },
  });
  app.get('/v1/tenants/:id/devices/:username', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a device and where it is registered', params: deviceParams, response: responses({ 200: deviceOut }) },
    handler: async (request) => withRegistrations(await devices.get(param(request, 'id'), param(request, 'username'))),
  });
  app.patch('/v1/tenants/:id/devices/:username', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Change a device\'s password or display name (displayName: null removes it; the username cannot change)',
      params: deviceParams,
      body: jsonSchema(devicePatchSchema),
      response: responses({ 200: deviceOut }),
    },
    handler: async (request) => withRegistrations(await devices.update(param(request, 'id'), param(request, 'username'), objectBody(request) as DevicePatch)),
  });
  app.delete('/v1/tenants/:id/devices/:username', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Delete a device and its registrations (its next REGISTER or call is refused)', params: deviceParams, response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      await devices.delete(param(request, 'id'), param(request, 'username'));
      return reply.status(204).send();
    },
  });
}

function tenantNotFound(id: string): CallgateError {
  return new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
}
