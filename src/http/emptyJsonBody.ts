import type { FastifyInstance } from 'fastify';

/**
 * `content-type: application/json` with an empty body reads as no body. curl users (and the docs'
 * examples) send the header on every request, so a DELETE or a body-less POST came with it and no
 * body, and Fastify's JSON parser refused it: 400 `FST_ERR_CTP_EMPTY_JSON_BODY` (issue 25). An empty
 * body is now `undefined`, as if no content type were sent: a route that needs a body refuses it with
 * its own validation, one that needs none runs. Anything else goes to Fastify's own JSON parser, with
 * its prototype-poisoning checks (`__proto__` and `constructor.prototype` are refused).
 */
export function acceptEmptyJsonBody(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') {
      done(null, undefined);
      return;
    }
    json(request, text, done);
  });
}
