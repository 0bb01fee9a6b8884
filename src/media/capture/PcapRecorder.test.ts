import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CaptureError } from '../../errors.js';
import { captureNowUs } from './PacketTap.js';
import { readUdpDatagrams } from './pcapReader.js';
import { captureFilePath, createRecorderFromEnv, PcapRecorder, sanitizeCaptureId } from './PcapRecorder.js';

const root = mkdtempSync(join(tmpdir(), 'cg-recorder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const local = { address: '127.0.0.1', port: 30000 };
const remote = { address: '127.0.0.1', port: 40000 };

describe('createRecorderFromEnv', () => {
  it('returns undefined without CAPTURE_DIR (or with an empty one)', () => {
    expect(createRecorderFromEnv({}, { callId: 'c', legId: 'l' })).toBeUndefined();
    expect(createRecorderFromEnv({ CAPTURE_DIR: '  ' }, { callId: 'c', legId: 'l' })).toBeUndefined();
  });

  it('creates the directory and writes ${CAPTURE_DIR}/${callId}-${legId}.pcap', async () => {
    const dir = join(root, 'nested', 'captures');
    const rec = createRecorderFromEnv({ CAPTURE_DIR: dir }, { callId: 'call42', legId: 'caller' });
    expect(rec).toBeInstanceOf(PcapRecorder);
    expect(rec!.path).toBe(join(dir, 'call42-caller.pcap'));
    await rec!.close();
    expect(readdirSync(dir)).toEqual(['call42-caller.pcap']);
  });

  it('keeps hostile ids inside the directory', () => {
    const dir = join(root, 'safe');
    for (const callId of ['../../etc/passwd', '..', '/abs/path', 'a\\..\\b', '.hidden', '', 'x'.repeat(500), 'nul\0byte']) {
      const path = captureFilePath(dir, { callId, legId: '../leg' });
      expect(path.startsWith(join(dir) + '/')).toBe(true);
      expect(path.slice(dir.length + 1)).not.toContain('/');
      expect(path.slice(dir.length + 1).startsWith('.')).toBe(false);
      expect(path.length).toBeLessThan(dir.length + 260);
    }
    expect(sanitizeCaptureId('a84b4c76e66710@pc33.atlanta.com')).toBe('a84b4c76e66710_pc33.atlanta.com');
    expect(sanitizeCaptureId('..')).toBe('_.');
  });

  it('reports an unusable CAPTURE_DIR through onError and records nothing', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const errors: CaptureError[] = [];
    const rec = createRecorderFromEnv({ CAPTURE_DIR: join(file, 'sub') }, { callId: 'c', legId: 'l' }, { onError: (e) => errors.push(e) });
    expect(rec).toBeUndefined();
    expect(errors.map((e) => e.code)).toEqual(['CG_PCAP_WRITE_FAILED']);
  });
});

describe('PcapRecorder', () => {
  it('records both directions; the reader gives back the same datagrams, order and timing', async () => {
    const dir = join(root, 'roundtrip');
    const rec = createRecorderFromEnv({ CAPTURE_DIR: dir }, { callId: 'rt', legId: 'a' })!;
    const sent: { dir: 'in' | 'out'; bytes: number[]; timeUs: number }[] = [];
    const reused = new Uint8Array(172);
    const t0 = captureNowUs();
    for (let i = 0; i < 200; i++) {
      const direction = i % 2 === 0 ? 'out' : 'in';
      // The endpoint may reuse its buffer: the recorder must have copied it during the call.
      reused.fill(i & 0xff);
      reused[0] = 0x80;
      const timeUs = t0 + i * 10_000 + (i % 7);
      rec.onPacket(direction, direction === 'out' ? local : remote, direction === 'out' ? remote : local, reused, timeUs);
      sent.push({ dir: direction, bytes: [...reused], timeUs });
    }
    const closing = rec.close();
    expect(rec.close()).toStrictEqual(closing);
    await closing;
    expect(rec.stats).toMatchObject({ records: 200, dropped: 0 });

    const { datagrams } = readUdpDatagrams(readFileSync(rec.path));
    expect(datagrams).toHaveLength(200);
    datagrams.forEach((d, i) => {
      const s = sent[i]!;
      expect(d.timeUs).toBe(s.timeUs);
      expect(d.src).toEqual(s.dir === 'out' ? local : remote);
      expect(d.dst).toEqual(s.dir === 'out' ? remote : local);
      expect([...d.payload]).toEqual(s.bytes);
    });
  });

  it('never rejects on close, even when the file could not be written', async () => {
    const errors: CaptureError[] = [];
    const rec = new PcapRecorder(join(root, 'missing', 'dir', 'x.pcap'), { onError: (e) => errors.push(e) });
    rec.onPacket('in', remote, local, new Uint8Array(20), captureNowUs());
    await expect(rec.close()).resolves.toBeUndefined();
    await expect(rec.close()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(rec.error?.code).toBe('CG_PCAP_WRITE_FAILED');
    expect(existsSync(join(root, 'missing'))).toBe(false);
  });

  it('drops packets it cannot encode (IPv6) without throwing on the packet path', async () => {
    const rec = new PcapRecorder(join(root, 'v6.pcap'));
    expect(() => rec.onPacket('in', { address: '::1', port: 1 }, { address: '::1', port: 2 }, new Uint8Array(20), 0)).not.toThrow();
    await rec.close();
    expect(rec.stats).toMatchObject({ records: 0, dropped: 1 });
  });
});
