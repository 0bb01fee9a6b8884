import { describe, expect, it } from 'vitest';
import { parseSipInfoDtmf } from './sipInfoDtmf.js';

describe('SIP INFO DTMF', () => {
  it('reads application/dtmf-relay and application/dtmf bodies', () => {
    expect(parseSipInfoDtmf('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n')).toMatchObject({ digit: '5', durationMs: 160 });
    expect(parseSipInfoDtmf('Application/DTMF-Relay; charset=x', 'Signal= #\nDuration= 100')).toMatchObject({ digit: '#', durationMs: 100 });
    expect(parseSipInfoDtmf('application/dtmf', '*')).toMatchObject({ digit: '*', durationMs: 250 });
  });

  it('ignores other bodies and bad keys', () => {
    expect(parseSipInfoDtmf('application/media_control+xml', '<x/>')).toBeUndefined();
    expect(parseSipInfoDtmf('application/dtmf-relay', 'Signal=X')).toBeUndefined();
    expect(parseSipInfoDtmf('application/dtmf', '12')).toBeUndefined();
    expect(parseSipInfoDtmf(undefined, undefined)).toBeUndefined();
  });
});
