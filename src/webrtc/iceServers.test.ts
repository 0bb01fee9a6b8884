import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { iceConfigFromEnv, iceServersFor, parseIceServers, parseIceUrl, toNodeDataChannel, turnCredential, turnRest } from './iceServers.js';

const SECRET = 'north-wind-secret-0123';

/** The CallgateError code and message `fn` throws. */
function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CallgateError);
    return { code: (err as CallgateError).code, message: (err as Error).message };
  }
  throw new Error('did not throw');
}

describe('TURN REST credentials (coturn use-auth-secret)', () => {
  it('matches a vector computed outside Node', () => {
    // printf '%s' '1700003600:page-abc' | openssl dgst -sha1 -hmac 'north-wind-secret-0123' -binary | base64
    expect(turnCredential(SECRET, '1700003600:page-abc')).toBe('aWQMIGm7qMF7/LwvESsgXSRzNGQ=');
  });

  it('gives each participant a username of expiry:id and that credential, after the static servers', () => {
    const config = { servers: [{ urls: ['stun:stun.example.net:3478'] }], turn: turnRest(SECRET, ['turn:turn.example.net:3478', 'turns:turn.example.net:5349'], 3600) };
    const servers = iceServersFor(config, 'page-abc', 1_700_000_000_999);
    expect(servers).toEqual([
      { urls: ['stun:stun.example.net:3478'] },
      { urls: ['turn:turn.example.net:3478', 'turns:turn.example.net:5349'], username: '1700003600:page-abc', credential: 'aWQMIGm7qMF7/LwvESsgXSRzNGQ=' },
    ]);
  });

  it('never lets the secret into a JSON or logged form of the configuration', () => {
    const config = iceConfigFromEnv({ TURN_SECRET: SECRET, TURN_URLS: 'turn:127.0.0.1:3478' });
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(JSON.stringify(iceServersFor(config, 'x'))).not.toContain(SECRET);
    expect(config.turn?.ttlS).toBe(3600);
  });
});

describe('ICE_SERVERS and TURN_* from the environment', () => {
  it('reads a browser-shaped list, urls as a string or a list', () => {
    const config = iceConfigFromEnv({ ICE_SERVERS: '[{"urls":"stun:stun.example.net"},{"urls":["turn:t.example.net?transport=tcp"],"username":"u","credential":"p"}]' });
    expect(config.servers).toEqual([{ urls: ['stun:stun.example.net'] }, { urls: ['turn:t.example.net?transport=tcp'], username: 'u', credential: 'p' }]);
    expect(config.turn).toBeUndefined();
    expect(iceConfigFromEnv({})).toEqual({ servers: [], turn: undefined });
  });

  it('refuses bad JSON with a clear CG_CONFIG_INVALID that does not echo the text', () => {
    const e = thrown(() => parseIceServers('[{"urls":"turn:h","username":"u","credential":"hunter2hunter2"'));
    expect(e.code).toBe('CG_CONFIG_INVALID');
    expect(e.message).toMatch(/ICE_SERVERS must be a JSON array .*not valid JSON/);
    expect(e.message).not.toContain('hunter2');
  });

  it.each([
    ['{"urls":"stun:a"}', /ICE_SERVERS: .*expected array/],
    ['[{"urls":"http://a"}]', /ICE_SERVERS\[0\]\.\[urls\]: .*stun:, stuns:, turn: or turns:/],
    ['[{"urls":"turn:a"}]', /ICE_SERVERS\[0\]: a turn: or turns: URL needs username and credential/],
    ['[{"urls":"stun:a","password":"x"}]', /ICE_SERVERS\[0\]: .*password/],
    ['[{"urls":[]}]', /ICE_SERVERS\[0\]\.\[urls\]/],
  ])('refuses %s', (text, message) => {
    const e = thrown(() => iceConfigFromEnv({ ICE_SERVERS: text }));
    expect(e.code).toBe('CG_CONFIG_INVALID');
    expect(e.message).toMatch(message);
  });

  it('wants TURN_SECRET and TURN_URLS together, a long enough secret, turn: URLs and a sane TTL', () => {
    expect(thrown(() => iceConfigFromEnv({ TURN_SECRET: SECRET })).message).toMatch(/TURN_SECRET is set without TURN_URLS/);
    expect(thrown(() => iceConfigFromEnv({ TURN_URLS: 'turn:a' })).message).toMatch(/TURN_URLS is set without TURN_SECRET/);
    const short = thrown(() => iceConfigFromEnv({ TURN_SECRET: 'short', TURN_URLS: 'turn:a' }));
    expect(short.message).toMatch(/at least 16 characters/);
    expect(short.message).not.toContain('short"');
    expect(thrown(() => iceConfigFromEnv({ TURN_SECRET: SECRET, TURN_URLS: 'stun:a' })).message).toMatch(/not a turn: or turns: URL/);
    expect(thrown(() => iceConfigFromEnv({ TURN_SECRET: SECRET, TURN_URLS: 'turn:a', TURN_TTL_S: '60' })).message).toMatch(/TURN_TTL_S must be an integer 600–604800/);
    expect(thrown(() => iceConfigFromEnv({ TURN_TTL_S: '3600' })).message).toMatch(/TURN_TTL_S is set without/);
    expect(iceConfigFromEnv({ TURN_SECRET: SECRET, TURN_URLS: ' turn:a:3478 , turns:a ', TURN_TTL_S: '7200' }).turn).toMatchObject({ urls: ['turn:a:3478', 'turns:a'], ttlS: 7200 });
  });
});

describe("node-datachannel's form", () => {
  it('parses STUN/TURN URLs with default ports, transports and IPv6', () => {
    expect(parseIceUrl('turn:[::1]:3479?transport=tcp')).toEqual({ scheme: 'turn', host: '::1', port: 3479, transport: 'tcp' });
    expect(parseIceUrl('turns:t.example.net')).toMatchObject({ port: 5349 });
    expect(parseIceUrl('stun:s.example.net')).toMatchObject({ port: 3478 });
    expect(parseIceUrl('turn:user@host')).toBeUndefined();
    expect(parseIceUrl('stun:s?transport=tcp')).toBeUndefined();
  });

  it('carries a REST username with its colon, and the credential, unescaped in the object form', () => {
    const servers = iceServersFor({ servers: [{ urls: ['stun:s.example.net:19302', 'stuns:s.example.net'] }], turn: turnRest(SECRET, ['turn:127.0.0.1:3478', 'turn:127.0.0.1:3478?transport=tcp', 'turns:t.example.net']) }, 'page-abc', 1_700_000_000_000);
    expect(toNodeDataChannel(servers)).toEqual([
      { hostname: 's.example.net', port: 19302 },
      { hostname: '127.0.0.1', port: 3478, username: '1700003600:page-abc', password: 'aWQMIGm7qMF7/LwvESsgXSRzNGQ=', relayType: 'TurnUdp' },
      { hostname: '127.0.0.1', port: 3478, username: '1700003600:page-abc', password: 'aWQMIGm7qMF7/LwvESsgXSRzNGQ=', relayType: 'TurnTcp' },
      { hostname: 't.example.net', port: 5349, username: '1700003600:page-abc', password: 'aWQMIGm7qMF7/LwvESsgXSRzNGQ=', relayType: 'TurnTls' },
    ]);
  });
});
