import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { gatewayConfigFromEnv } from './config.js';

/** CALLGATE_SIP / `--sip`: the drachtio-server the gateway starts, and what it may not be combined with. */
describe('gatewayConfigFromEnv: the SIP door in one command', () => {
  it('is off by default; CALLGATE_SIP=1 or the --sip flag turn it on at 127.0.0.1:5060', () => {
    expect(gatewayConfigFromEnv({}).sipServer).toBeUndefined();
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: '0' }).sipServer).toBeUndefined();
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: '1' }).sipServer).toEqual({ address: '127.0.0.1', port: 5060 });
    expect(gatewayConfigFromEnv({}, { sip: true }).sipServer).toEqual({ address: '127.0.0.1', port: 5060 });
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: 'true', SIP_PORT: '5080', SIP_ADDRESS: '10.0.0.5' }).sipServer).toEqual({ address: '10.0.0.5', port: 5080 });
    // SIP_PORT and SIP_ADDRESS alone start nothing.
    expect(gatewayConfigFromEnv({ SIP_PORT: '5080' }).sipServer).toBeUndefined();
  });

  it('relays callers\' media on SIP_ADDRESS unless RTPENGINE_INTERFACE says otherwise', () => {
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: '1' }).rtpengineInterface).toBe('127.0.0.1');
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: '1', SIP_ADDRESS: '10.0.0.5' }).rtpengineInterface).toBe('10.0.0.5');
    expect(gatewayConfigFromEnv({ CALLGATE_SIP: '1', SIP_ADDRESS: '10.0.0.5', RTPENGINE_INTERFACE: '10.0.0.6' }).rtpengineInterface).toBe('10.0.0.6');
  });

  it.each([
    [{ CALLGATE_SIP: '1', DRACHTIO_HOST: '127.0.0.1', DRACHTIO_SECRET: 's' }, /CALLGATE_SIP=1 \(or --sip\) starts a drachtio-server here, and DRACHTIO_HOST\/DRACHTIO_PORT name one already running/],
    [{ CALLGATE_SIP: 'on' }, /CALLGATE_SIP must be 1 or 0, not "on"/],
    [{ CALLGATE_SIP: '1', SIP_PORT: '70000' }, /SIP_PORT must be an integer 1–65535/],
    [{ CALLGATE_SIP: '1', SIP_ADDRESS: '0.0.0.0' }, /SIP_ADDRESS must be an address of this host, not "0.0.0.0"/],
    [{ CALLGATE_SIP: '1', SIP_ADDRESS: 'sip.example.com' }, /SIP_ADDRESS must be an IP address/],
  ])('refuses %o', (env, message) => {
    expect(() => gatewayConfigFromEnv(env)).toThrow(CallgateError);
    expect(() => gatewayConfigFromEnv(env)).toThrow(message);
  });
});
