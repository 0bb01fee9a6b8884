import { describe, expect, it } from 'vitest';
import { DigestAuth, digestResponse, parseDigestAuthorization, sameRequestUri } from './DigestAuth.js';

/** A client's answer to a challenge, computed the way a phone would. */
function answer(challenge: string, user: string, password: string, uri = 'sip:+15005550100@gw'): string {
  const realm = /realm="([^"]+)"/.exec(challenge)![1]!;
  const nonce = /nonce="([^"]+)"/.exec(challenge)![1]!;
  const fields = { username: user, realm, nonce, uri, qop: 'auth', nc: '00000001', cnonce: 'c0ffee' };
  const response = digestResponse('INVITE', fields, password);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"`;
}

describe('DigestAuth', () => {
  it("computes RFC 2617's worked example", () => {
    // RFC 2617 §3.5: Mufasa / "Circle Of Life" → 6629fae49393a05397450978507c4ef1.
    const creds = { username: 'Mufasa', realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', uri: '/dir/index.html', qop: 'auth', nc: '00000001', cnonce: '0a4f113b' };
    expect(digestResponse('GET', creds, 'Circle Of Life')).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('parses quoted and bare fields; refuses headers missing what the check needs', () => {
    const parsed = parseDigestAuthorization('Digest username="desk\\"1", realm="callgate",nonce="n.m", uri="sip:a@b", response="ABC", qop=auth, nc=00000001, cnonce="x"');
    expect(parsed).toMatchObject({ username: 'desk\\"1', realm: 'callgate', nonce: 'n.m', qop: 'auth', nc: '00000001' });
    expect(parseDigestAuthorization('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(parseDigestAuthorization('Digest username="a", realm="r"')).toBeUndefined();
    expect(parseDigestAuthorization(undefined)).toBeUndefined();
  });

  it('accepts the right password for its own nonce and refuses a wrong one with 403', () => {
    const auth = new DigestAuth();
    const challenge = auth.challenge(1_000).headers['WWW-Authenticate']!;
    expect(challenge).toMatch(/^Digest realm="callgate", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
    expect(() => auth.verify('INVITE', parseDigestAuthorization(answer(challenge, 'desk', 's3cret-pass'))!, 's3cret-pass', 2_000)).not.toThrow();
    expect(() => auth.verify('INVITE', parseDigestAuthorization(answer(challenge, 'desk', 'guess'))!, 's3cret-pass', 2_000)).toThrow(expect.objectContaining({ status: 403 }));
    // The method is part of the hash: an answer made for another request does not pass.
    expect(() => auth.verify('BYE', parseDigestAuthorization(answer(challenge, 'desk', 's3cret-pass'))!, 's3cret-pass', 2_000)).toThrow(expect.objectContaining({ status: 403 }));
  });

  it('re-challenges a forged nonce, and a stale one with stale=true', () => {
    const auth = new DigestAuth({ nonceTtlMs: 60_000 });
    const other = new DigestAuth();
    const foreign = answer(other.challenge(1_000).headers['WWW-Authenticate']!, 'desk', 'pw-12345678');
    expect(() => auth.verify('INVITE', parseDigestAuthorization(foreign)!, 'pw-12345678', 2_000)).toThrow(expect.objectContaining({ status: 401 }));
    const old = answer(auth.challenge(1_000).headers['WWW-Authenticate']!, 'desk', 'pw-12345678');
    let stale: unknown;
    try {
      auth.verify('INVITE', parseDigestAuthorization(old)!, 'pw-12345678', 1_000 + 60_001);
    } catch (err) {
      stale = err;
    }
    expect(stale).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': expect.stringContaining('stale=true') } });
  });

  it('gateways sharing the secret accept each other’s nonces', () => {
    const secret = Buffer.alloc(32, 7);
    const a = new DigestAuth({ secret });
    const b = new DigestAuth({ secret });
    const reply = answer(a.challenge(5_000).headers['WWW-Authenticate']!, 'pbx', 'pw-12345678');
    expect(() => b.verify('INVITE', parseDigestAuthorization(reply)!, 'pw-12345678', 6_000)).not.toThrow();
  });

  it("matches a digest answer's uri to the Request-URI as SIP compares URIs (RFC 3261 §19.1.4)", () => {
    const ruri = 'sip:+15005550100@gw.example:5060;user=phone';
    expect(sameRequestUri(ruri, ruri)).toBe(true);
    expect(sameRequestUri('SIP:+15005550100@GW.example:5060;User=Phone', ruri)).toBe(true);
    expect(sameRequestUri('sip:%2B15005550100@gw.example:5060;user=phone', ruri)).toBe(true);
    // Issue 24: an answer for sip:127.0.0.1 opened a call to a number.
    expect(sameRequestUri('sip:127.0.0.1', ruri)).toBe(false);
    expect(sameRequestUri('sip:+15005550101@gw.example:5060;user=phone', ruri)).toBe(false);
    expect(sameRequestUri('sip:+15005550100@gw.example;user=phone', ruri)).toBe(false);
    expect(sameRequestUri('sip:+15005550100@gw.example:5060', ruri)).toBe(false);
    expect(sameRequestUri('sips:+15005550100@gw.example:5060;user=phone', ruri)).toBe(false);
    // Other parameters count only when both have them.
    expect(sameRequestUri('sip:desk@gw;lr', 'sip:desk@gw')).toBe(true);
    expect(sameRequestUri('sip:desk@gw;transport=tcp', 'sip:desk@gw')).toBe(false);
    expect(sameRequestUri('garbage', ruri)).toBe(false);
    expect(sameRequestUri('', '')).toBe(true);
  });
});
