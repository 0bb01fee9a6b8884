import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { callLogger, loggerOptions, loggerTo, logFormat, prettyLogStream } from './log.js';

describe('log redaction', () => {
  it('censors keys, passwords and authorization headers that reach a log line', () => {
    const lines: string[] = [];
    const log = loggerTo({ write: (line: string) => void lines.push(line) });
    log.info({ apiKey: 'sk-live-1', options: { apiKey: 'sk-live-2', model: 'm' }, tenant: { providerKeys: { openai: 'sk-live-3' } }, auth: { password: 'hunter2' }, req: { headers: { authorization: 'Bearer sk-live-4', 'xi-api-key': 'el-live-5' } } }, 'hello');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    for (const secret of ['sk-live-1', 'sk-live-2', 'sk-live-3', 'hunter2', 'sk-live-4', 'el-live-5']) expect(line).not.toContain(secret);
    expect(JSON.parse(line)).toMatchObject({ apiKey: '[redacted]', options: { apiKey: '[redacted]', model: 'm' }, msg: 'hello' });
  });
});

describe('log format', () => {
  it('json unless a terminal reads it; LOG_FORMAT chooses', () => {
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });

  it('on a terminal: one line with time, level, call id and tenant, the message, then the rest', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = pino({ ...loggerOptions, level: 'info' }, prettyLogStream(out, false));
    // The session's logger made from the door's: the call's keys once, not twice.
    callLogger({ callId: 'web-1', tenant: 'demo' }, callLogger({ callId: 'web-1', tenant: 'demo' }, log)).info({ reason: 'caller-hangup', turns: 1 }, 'agent session ended');
    log.warn('plain');
    await new Promise((r) => setTimeout(r, 50));
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: web-1 demo │ agent session ended \{"reason":"caller-hangup","turns":1\}$/);
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: plain$/);
  });

  it('a call logger made from one that has its keys adds no second copy (JSON)', () => {
    const lines: string[] = [];
    const log = loggerTo({ write: (line: string) => void lines.push(line) });
    callLogger({ callId: 'c1', tenant: 't' }, callLogger({ callId: 'c1', tenant: 't' }, log)).info('x');
    expect(lines[0]!.match(/"callId"/g)).toHaveLength(1);
    expect(lines[0]!.match(/"tenant"/g)).toHaveLength(1);
  });
});
