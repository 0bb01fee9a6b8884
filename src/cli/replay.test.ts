import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodePcap, type PcapRecord } from '../media/capture/pcapWriter.js';
import { serializeRtp } from '../media/rtp/RtpPacket.js';
import { main, parseReplayArgs, parseSsrc, parseTarget } from './replay.js';

const dir = mkdtempSync(join(tmpdir(), 'cg-replay-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000_000;
const caller = { address: '10.0.0.1', port: 40000 };
const agent = { address: '10.0.0.2', port: 20000 };

function rtpRecords(ssrc: number, count: number, src = caller, dst = agent, startUs = T0): PcapRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    timeUs: startUs + i * 20_000,
    src,
    dst,
    payload: serializeRtp({ marker: i === 0, payloadType: 0, sequenceNumber: 1000 + i, timestamp: i * 160, ssrc }, new Uint8Array(160).fill(i & 0xff)),
  }));
}

/** Writes a capture made by our own writer, as a recorder would have left it. */
function capture(name: string, records: PcapRecord[]): string {
  const path = join(dir, name);
  writeFileSync(path, encodePcap([...records].sort((a, b) => a.timeUs - b.timeUs)));
  return path;
}

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, out, err };
}

const sockets: Socket[] = [];
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function receiver(): Promise<{ port: number; got: { seq: number; ssrc: number; atMs: number }[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const got: { seq: number; ssrc: number; atMs: number }[] = [];
  socket.on('message', (m) => got.push({ seq: m.readUInt16BE(2), ssrc: m.readUInt32BE(8), atMs: performance.now() }));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { port: socket.address().port, got };
}

describe('argument parsing', () => {
  it('accepts SSRCs in decimal and 0x hex, and refuses the rest', () => {
    expect(parseSsrc('0xDEADbeef')).toBe(0xdeadbeef);
    expect(parseSsrc('3735928559')).toBe(0xdeadbeef);
    expect(parseSsrc('0')).toBe(0);
    for (const bad of ['4294967296', '-1', '0x', '0x123456789', '12ab', '1e3', '']) expect(typeof parseSsrc(bad)).toBe('string');
  });

  it('parses host:port and [v6]:port targets', () => {
    expect(parseTarget('127.0.0.1:5004')).toEqual({ address: '127.0.0.1', port: 5004 });
    expect(parseTarget('localhost:9')).toEqual({ address: 'localhost', port: 9 });
    expect(parseTarget('[::1]:5004')).toEqual({ address: '::1', port: 5004 });
    for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', ':5004', '::1:5004', 'host:port']) expect(typeof parseTarget(bad)).toBe('string');
  });

  it('lists when there is no --to, and validates speed', () => {
    expect(parseReplayArgs(['x.pcap'])).toMatchObject({ file: 'x.pcap', list: true, speed: 1 });
    expect(parseReplayArgs(['x.pcap', '--to', '127.0.0.1:9', '--speed', 'max'])).toMatchObject({ list: false, speed: 'max' });
    expect(parseReplayArgs(['x.pcap', '--to', '127.0.0.1:9', '--speed', '2.5'])).toMatchObject({ speed: 2.5 });
    for (const argv of [[], ['a', 'b'], ['x', '--speed', '0'], ['x', '--speed', 'fast'], ['x', '--bogus'], ['x', '--stream', '-1']]) {
      expect(parseReplayArgs(argv)).toHaveProperty('usageError');
    }
  });
});

describe('main (in process)', () => {
  const two = capture('two.pcap', [...rtpRecords(0x1111, 10), ...rtpRecords(0x2222, 5, agent, caller, T0 + 3000)]);

  it('--list prints a table and ends with one JSON line', async () => {
    const { code, out } = await run([two, '--list']);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/0x00001111\s+10\.0\.0\.1:40000\s+10\.0\.0\.2:20000\s+0\s+10\s/);
    const json = JSON.parse(out[out.length - 1]!);
    expect(json.streams.map((s: { ssrcHex: string; packetCount: number }) => [s.ssrcHex, s.packetCount])).toEqual([
      ['0x00001111', 10],
      ['0x00002222', 5],
    ]);
  });

  it('exits 2 and lists the streams when several match and no --ssrc is given', async () => {
    const { code, err } = await run([two, '--to', '127.0.0.1:9']);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('--ssrc');
    expect(err.join('\n')).toContain('0x00002222');
  });

  it('exits 1 with CG_REPLAY_NO_STREAM for an SSRC the capture lacks', async () => {
    const { code, err } = await run([two, '--to', '127.0.0.1:9', '--ssrc', '0x3333']);
    expect(code).toBe(1);
    expect(err.join('\n')).toContain('CG_REPLAY_NO_STREAM');
  });

  it('exits 1 with the capture error code for a file that is not a capture, and for a missing file', async () => {
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, 'hello, not a capture');
    const bad = await run([junk, '--list']);
    expect(bad.code).toBe(1);
    expect(bad.err.join('\n')).toContain('CG_PCAP_BAD_MAGIC');
    const missing = await run([join(dir, 'nope.pcap')]);
    expect(missing.code).toBe(1);
    expect(missing.err.join('\n')).toContain('ENOENT');
  });

  it('exits 2 with usage for bad arguments', async () => {
    const { code, err } = await run([two, '--to', 'nowhere']);
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/--to must be host:port[\s\S]*usage:/);
  });

  it('replays the stream chosen by --ssrc', async () => {
    const rx = await receiver();
    const { code, out } = await run([two, '--to', `127.0.0.1:${rx.port}`, '--ssrc', String(0x2222), '--speed', 'max']);
    expect(code).toBe(0);
    expect(JSON.parse(out[out.length - 1]!)).toMatchObject({ ssrc: '0x00002222', packets: 5, aborted: false });
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.got.map((g) => g.ssrc)).toEqual([0x2222, 0x2222, 0x2222, 0x2222, 0x2222]);
  });
});

/** Runs the CLI as a user would: `npx tsx src/cli/replay.ts …`, from the project root. */
function spawnCli(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'src/cli/replay.ts', ...argv], { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('CLI end to end (spawned)', () => {
  it('replays a written capture at speed 1: complete, in order, with progress, summary and a JSON line', async () => {
    // 1.3 s of one stream, plus RTCP and a SIP-ish datagram that must be skipped.
    const records = rtpRecords(0xabcdef01, 66);
    records.push({ timeUs: T0 + 500_000, src: caller, dst: { ...agent, port: 20001 }, payload: new Uint8Array([0x80, 200, 0, 6, ...new Array<number>(24).fill(0)]) });
    records.push({ timeUs: T0 + 10, src: caller, dst: { ...agent, port: 5060 }, payload: Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n') });
    const file = capture('one.pcap', records);
    const rx = await receiver();
    const { code, stdout, stderr } = await spawnCli([file, '--to', `127.0.0.1:${rx.port}`]);
    expect(code).toBe(0);
    expect(stderr).toMatch(/replaying 0xabcdef01 \(66 packets, 1\.30 s\)/);
    expect(stderr).toMatch(/ sent \d+\/66 packets/); // the once-a-second progress line
    expect(stderr).toMatch(/sent 66 packets, 11352 bytes in 1\.3\d s; lateness p50/);
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]!);
    expect(summary).toMatchObject({ ssrc: '0xabcdef01', packets: 66, bytes: 66 * 172, aborted: false, sendErrors: 0 });
    expect(rx.got.map((g) => g.seq)).toEqual(Array.from({ length: 66 }, (_, i) => 1000 + i));
    // From the second packet: the first one pays for cold code paths in a fresh process.
    const span = rx.got[65]!.atMs - rx.got[1]!.atMs;
    // Loose on purpose (a shared machine can stall one packet); replay.test.ts checks timing closely.
    expect(Math.abs(span - 1280)).toBeLessThan(50);
  });

  it('--speed max sends the same capture in a fraction of its duration; bad args exit 2', async () => {
    const file = capture('long.pcap', rtpRecords(7, 500)); // 10 s of media
    const rx = await receiver();
    const { code, stdout } = await spawnCli([file, '--to', `127.0.0.1:${rx.port}`, '--speed', 'max']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ packets: 500, speed: 'max' });
    expect(summary.durationMs).toBeLessThan(500);
    const bad = await spawnCli([file, '--to', '127.0.0.1:5004', '--ssrc', 'zzz']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--ssrc must be');
  });
});
