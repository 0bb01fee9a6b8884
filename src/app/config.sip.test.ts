import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultRtpengineProcessOptions } from '../sip/rtpengine/RtpengineProcess.js';
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

/**
 * Issue 25: one doc said 30000–30999 for rtpengine's media ports, another 30000–39999. The range the
 * code uses (RtpengineProcess's default, what `npm start` runs) is the one every file names.
 */
describe("rtpengine's media port range: one truth", () => {
  const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const { portMin, portMax } = defaultRtpengineProcessOptions;

  it('is the default of RTPENGINE_PORT_MIN/MAX, and what the configs, the compose stack and the docs say', () => {
    expect(gatewayConfigFromEnv({})).toMatchObject({ rtpenginePortMin: portMin, rtpenginePortMax: portMax });
    for (const conf of ['rtpengine/local.conf', 'rtpengine/docker.conf']) {
      expect({ conf, text: /port-min = (\d+)\nport-max = (\d+)/.exec(read(conf))?.slice(1) }).toEqual({ conf, text: [String(portMin), String(portMax)] });
    }
    expect(read('docker/compose.yaml')).toContain(`--port-min=${portMin}\n      - --port-max=${portMax}`);
    expect(read('README.md')).toContain(`| \`RTPENGINE_PORT_MAX\` | \`${portMax}\` |`);
    // Every range a doc gives for rtpengine's media is this one (agent legs' 20000–29999 aside).
    for (const doc of ['README.md', 'docker/README.md', 'rtpengine/README.md', 'docs/connect-a-sip-trunk.md', 'docs/sip.md', 'docs/scaling.md']) {
      const ranges = [...read(doc).matchAll(/\b(3\d{4})\s*[–-]\s*(\d{5})\b/g)].map((m) => `${m[1]}–${m[2]}`);
      expect({ doc, ranges: [...new Set(ranges)] }).toEqual({ doc, ranges: ranges.length ? [`${portMin}–${portMax}`] : [] });
    }
  });
});
