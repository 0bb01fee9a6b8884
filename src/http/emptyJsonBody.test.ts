import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { acceptEmptyJsonBody } from './emptyJsonBody.js';

/** Fastify with the parser: an empty JSON body is no body; any other body is parsed as before. */
describe('acceptEmptyJsonBody', () => {
  const app = Fastify();
  acceptEmptyJsonBody(app);
  for (const method of ['DELETE', 'POST', 'PATCH'] as const) app.route({ method, url: '/x', handler: async (req) => ({ body: req.body === undefined ? 'none' : req.body }) });
  const json = { 'content-type': 'application/json' };

  it('reads an empty body with content-type application/json as no body (DELETE, POST, PATCH)', async () => {
    for (const method of ['DELETE', 'POST', 'PATCH'] as const) {
      const r = await app.inject({ method, url: '/x', headers: json });
      expect({ method, status: r.statusCode, body: r.json() }).toEqual({ method, status: 200, body: { body: 'none' } });
    }
    const charset = await app.inject({ method: 'DELETE', url: '/x', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: '' });
    expect(charset.json()).toEqual({ body: 'none' });
  });

  it('parses a body as Fastify does, and refuses what it refuses', async () => {
    expect((await app.inject({ method: 'POST', url: '/x', headers: json, payload: '{"a":1}' })).json()).toEqual({ body: { a: 1 } });
    const bad = await app.inject({ method: 'POST', url: '/x', headers: json, payload: '{"a":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
    const poisoned = await app.inject({ method: 'POST', url: '/x', headers: json, payload: '{"__proto__":{"admin":true}}' });
    expect(poisoned.statusCode).toBe(400);
    // Whitespace is not empty: it is a body that is not JSON.
    expect((await app.inject({ method: 'POST', url: '/x', headers: json, payload: ' ' })).statusCode).toBe(400);
  });
});
