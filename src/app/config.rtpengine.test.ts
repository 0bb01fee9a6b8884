import { describe, expect, it } from 'vitest';
import { defaultRtpengineProcessOptions, rtpengineInterfaces } from '../sip/rtpengine/RtpengineProcess.js';
import { gatewayConfigFromEnv, rtpengineProcessOptions } from './config.js';

/** The rtpengine settings of issue 18: RTPENGINE_INTERFACE, RTPENGINE_ADVERTISED_ADDRESS, RTPENGINE_PORT_MIN/MAX. */
describe('rtpengine settings from the environment', () => {
  it('defaults to what npm start ran before: one loopback interface, ports 30000–30999', () => {
    const c = gatewayConfigFromEnv({});
    expect(c).toMatchObject({ rtpengineInterface: '127.0.0.1', rtpengineAdvertisedAddress: undefined, rtpenginePortMin: 30000, rtpenginePortMax: 30999, rtpengineDirection: undefined });
    expect(rtpengineInterfaces({ ...defaultRtpengineProcessOptions, ...rtpengineProcessOptions(c) })).toEqual({ line: '127.0.0.1', anchor: undefined });
  });

  it('an advertised address gives callers their own interface, and leaves the agent side on loopback', () => {
    const c = gatewayConfigFromEnv({ RTPENGINE_INTERFACE: '10.0.0.5', RTPENGINE_ADVERTISED_ADDRESS: '203.0.113.10', RTPENGINE_PORT_MIN: '40000', RTPENGINE_PORT_MAX: '40999' });
    expect(rtpengineProcessOptions(c)).toEqual({ callerAddress: '10.0.0.5', advertisedAddress: '203.0.113.10', portMin: 40000, portMax: 40999 });
    expect(rtpengineInterfaces({ address: '127.0.0.1', callerAddress: '10.0.0.5', advertisedAddress: '203.0.113.10' })).toEqual({
      line: 'agent/127.0.0.1;caller/10.0.0.5!203.0.113.10',
      anchor: { caller: 'caller', agent: 'agent' },
    });
    // A public interface with nothing to advertise (no NAT): its own address goes into the SDP.
    expect(rtpengineInterfaces({ address: '127.0.0.1', callerAddress: '10.0.0.5', advertisedAddress: undefined }).line).toBe('agent/127.0.0.1;caller/10.0.0.5');
  });

  it('cluster workers read the interface names the primary passes them', () => {
    expect(gatewayConfigFromEnv({ CALLGATE_RTPENGINE_DIRECTION: 'caller,agent' }).rtpengineDirection).toEqual({ caller: 'caller', agent: 'agent' });
  });

  it.each([
    [{ RTPENGINE_INTERFACE: 'eth0' }, /RTPENGINE_INTERFACE must be an IP address, not "eth0"/],
    [{ RTPENGINE_ADVERTISED_ADDRESS: '203.0.113.300' }, /RTPENGINE_ADVERTISED_ADDRESS must be an IP address/],
    [{ RTPENGINE_ADVERTISED_ADDRESS: 'gw.example.com' }, /RTPENGINE_ADVERTISED_ADDRESS must be an IP address/],
    [{ RTPENGINE_ADVERTISED_ADDRESS: '0.0.0.0' }, /RTPENGINE_ADVERTISED_ADDRESS must be an address callers can send to/],
    [{ RTPENGINE_INTERFACE: '0.0.0.0', RTPENGINE_ADVERTISED_ADDRESS: '203.0.113.10' }, /RTPENGINE_INTERFACE must be an address of this host, not "0.0.0.0"/],
    [{ RTPENGINE_PORT_MIN: '40000', RTPENGINE_PORT_MAX: '39000' }, /RTPENGINE_PORT_MIN \(40000\) must be below RTPENGINE_PORT_MAX \(39000\)/],
    [{ RTPENGINE_PORT_MIN: '31000' }, /RTPENGINE_PORT_MIN \(31000\) must be below RTPENGINE_PORT_MAX \(30999\)/],
    [{ RTPENGINE_PORT_MAX: '70000' }, /RTPENGINE_PORT_MAX must be an integer 1024–65535, not "70000"/],
    [{ RTPENGINE_PORT_MIN: '80' }, /RTPENGINE_PORT_MIN must be an integer 1024–65535/],
    [{ RTPENGINE_PORT_MIN: '30000.5' }, /RTPENGINE_PORT_MIN must be an integer/],
  ])('%o is a CG_CONFIG_INVALID at start', (env, message) => {
    let err: unknown;
    try {
      gatewayConfigFromEnv(env);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'CallgateError', code: 'CG_CONFIG_INVALID' });
    expect((err as Error).message).toMatch(message);
  });
});
