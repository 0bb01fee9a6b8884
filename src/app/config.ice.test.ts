import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { iceServersFor } from '../webrtc/iceServers.js';
import { gatewayConfigFromEnv } from './config.js';

describe('STUN/TURN settings of npm start (ICE_SERVERS, TURN_*, WEBRTC_ICE_ADDRESS)', () => {
  it('has none by default, and the door gathers on loopback', () => {
    const c = gatewayConfigFromEnv({});
    expect(c.ice).toEqual({ servers: [], turn: undefined });
    expect(c.webrtcIceAddress).toBe('127.0.0.1');
  });

  it('reads them into GatewayConfig.ice, the secret out of the config JSON', () => {
    const secret = 'a-turn-secret-of-some-length';
    const c = gatewayConfigFromEnv({ ICE_SERVERS: '[{"urls":"stun:stun.example.net"}]', TURN_SECRET: secret, TURN_URLS: 'turn:turn.example.net', WEBRTC_ICE_ADDRESS: '10.0.0.5' });
    expect(JSON.stringify(c)).not.toContain(secret);
    expect(iceServersFor(c.ice, 'page-1', 0)).toEqual([{ urls: ['stun:stun.example.net'] }, { urls: ['turn:turn.example.net'], username: '3600:page-1', credential: expect.any(String) }]);
    expect(c.webrtcIceAddress).toBe('10.0.0.5');
  });

  it('stops the start on a bad value with CG_CONFIG_INVALID', () => {
    for (const env of [{ ICE_SERVERS: 'stun:stun.example.net' }, { TURN_SECRET: 'a-turn-secret-of-some-length' }, { WEBRTC_ICE_ADDRESS: 'localhost' }]) {
      expect(() => gatewayConfigFromEnv(env)).toThrow(CallgateError);
      try {
        gatewayConfigFromEnv(env);
      } catch (err) {
        expect((err as CallgateError).code).toBe('CG_CONFIG_INVALID');
      }
    }
  });
});
