import { describe, expect, it } from 'vitest';
import { loggerTo } from './log.js';

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
