import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MediaAnchor } from './MediaAnchor.js';
import { RtpengineProcess } from './RtpengineProcess.js';
import { describeWith } from '../../../tests/support/tools.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One CLI command over TCP, the whole reply as text. */
function cli(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Written, not half-closed: rtpengine answers and then closes the socket itself. With the end sent at
    // once, a clean-clone CI run on a loaded host got '' (most likely the end was seen before the command).
    const sock = connect(port, '127.0.0.1', () => sock.write(`${command}\n`));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (out += d));
    sock.on('error', reject);
    sock.on('close', () => resolve(out));
  });
}

describeWith(['rtpengine'], 'RtpengineProcess', () => {
  it('starts a private rtpengine that answers ng and CLI, and stop() leaves no process', async () => {
    const rtpe = await RtpengineProcess.start({ portMin: 31100, portMax: 31199 });
    const pid = rtpe.pid;
    expect(pid).toBeTypeOf('number');
    const anchor = await MediaAnchor.open({ port: rtpe.ngPort });
    try {
      await anchor.ping();
      expect(await anchor.sessionCount()).toBe(0);
      expect(await cli(rtpe.cliPort, 'list numsessions')).toMatch(/sessions total: 0/i);
    } finally {
      anchor.close();
      await rtpe.stop();
    }
    expect(rtpe.running).toBe(false);
    expect(alive(pid!)).toBe(false);
    await rtpe.stop(); // idempotent
  });

  it('says why when the binary is missing', async () => {
    await expect(RtpengineProcess.start({ binary: '/nonexistent/rtpengine' })).rejects.toMatchObject({ code: 'CG_RTPENGINE_UNAVAILABLE' });
  });
});
