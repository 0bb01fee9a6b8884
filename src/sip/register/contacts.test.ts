import { describe, expect, it } from 'vitest';
import { ContactSyntaxError, parseContacts } from './contacts.js';

describe('parseContacts', () => {
  it('reads name-addrs and bare URIs with their expires and +sip.instance, and * alone', () => {
    expect(parseContacts('<sip:alice-0x55f3@127.0.0.1:48180>;expires=60')).toEqual([{ uri: 'sip:alice-0x55f3@127.0.0.1:48180', expires: 60 }]);
    expect(parseContacts('"Desk, front" <sip:alice@10.0.0.5:5060;transport=tcp>;q=0.7;+sip.instance="<urn:uuid:1234>", sip:alice@10.0.0.6;expires=0')).toEqual([
      { uri: 'sip:alice@10.0.0.5:5060;transport=tcp', instance: '<urn:uuid:1234>' },
      { uri: 'sip:alice@10.0.0.6', expires: 0 },
    ]);
    // A bare URI's parameters after the first ';' are the header's (RFC 3261 §20.10).
    expect(parseContacts('sip:bob@192.0.2.1:5062;expires=3600')).toEqual([{ uri: 'sip:bob@192.0.2.1:5062', expires: 3600 }]);
    expect(parseContacts(' * ')).toBe('*');
    expect(parseContacts(undefined)).toEqual([]);
    expect(parseContacts('')).toEqual([]);
  });

  it('refuses what is not a Contact', () => {
    for (const bad of ['*, <sip:a@b>', '<sip:a@b', 'http://example.com', '<sip:a@b>;expires=soon', '"unclosed <sip:a@b>', Array.from({ length: 11 }, (_, i) => `<sip:a${i}@b>`).join(',')]) {
      expect(() => parseContacts(bad), bad).toThrow(ContactSyntaxError);
    }
  });
});
