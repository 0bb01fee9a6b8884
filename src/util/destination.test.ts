import { describe, expect, it } from 'vitest';
import { checkDestination, DestinationRefused, isPublicAddress } from './destination.js';

describe('destinations the gateway may call', () => {
  it('tells public addresses from loopback, private, link-local and reserved ones', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) expect(isPublicAddress(a), a).toBe(true);
  });

  it('refuses URLs on such addresses (and localhost) when saved, unless allowed', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'https://localhost/x', 'http://[::1]/x', 'http://169.254.169.254/latest/meta-data', 'http://10.0.0.5/hook']) {
      await expect(checkDestination(url, false), url).rejects.toBeInstanceOf(DestinationRefused);
      await expect(checkDestination(url, true), url).resolves.toBeUndefined();
    }
    await expect(checkDestination('https://93.184.216.34/hook', false)).resolves.toBeUndefined();
  });
});
