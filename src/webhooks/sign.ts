import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * Every request the gateway sends to a tenant's server is signed the way Stripe-style webhooks are, so
 * a receiver can check it came from its gateway and is fresh:
 *   X-Callgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *   X-Callgate-Delivery: <id>   (the same id on every retry of one delivery, for idempotency)
 * docs/tools.md shows the check in Node and Python.
 */
export const SIGNATURE_HEADER = 'X-Callgate-Signature';
export const DELIVERY_HEADER = 'X-Callgate-Delivery';

export function signature(secret: string, body: string, atSeconds: number = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${atSeconds}.${body}`).digest('hex');
  return `t=${atSeconds},v1=${mac}`;
}

/** The headers of one signed request; a tenant without a secret gets the delivery id only. */
export function signedHeaders(secret: string | undefined, body: string, deliveryId: string = randomUUID()): Record<string, string> {
  return { [DELIVERY_HEADER]: deliveryId, ...(secret ? { [SIGNATURE_HEADER]: signature(secret, body) } : {}) };
}

/**
 * Checks a signature header as a receiver would (used by our tests and the docs' example): the HMAC
 * matches and `t` is within `toleranceSeconds` of now.
 */
export function verifySignature(secret: string, body: string, header: string | undefined, toleranceSeconds = 300, nowSeconds = Date.now() / 1000): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  const v1 = parts.v1;
  if (!Number.isFinite(t) || !v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const want = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const got = Buffer.from(v1);
  return got.length === want.length && timingSafeEqual(got, want);
}
