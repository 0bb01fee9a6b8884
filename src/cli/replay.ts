/**
 * npm run replay -- <capture.pcap> --to <host:port> [--ssrc X | --stream N] [--speed 1|max|<n>] [--list]
 *
 * Lists the RTP streams in a capture, or sends one of them to a UDP target at its captured pace.
 * Progress and the summary go to stderr; the last line on stdout is one JSON object for scripts.
 * Exit codes: 0 done, 1 the capture or the stream could not be used, 2 bad arguments, 130 interrupted.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isCallgateError } from '../errors.js';
import type { UdpAddress } from '../media/capture/PacketTap.js';
import { CaptureReader, type CaptureFormat } from '../media/capture/pcapReader.js';
import type { CaptureStats } from '../media/capture/captureTypes.js';
import { replayStream, type ReplaySummary } from '../media/capture/replay.js';
import { findRtpStreams, formatSsrc, type RtpStream, type RtpStreamScan } from '../media/capture/rtpStreams.js';

const USAGE = `usage: npm run replay -- <capture.pcap|.pcapng> [--to <host:port>] [--ssrc <n|0xhex>] [--stream <index>]
                        [--speed 1|max|<n>] [--list]
  --list         print the RTP streams in the capture (also the default without --to)
  --to           send one stream's datagrams to this UDP address ([v6]:port for IPv6)
  --ssrc         which stream, by SSRC (decimal or 0x hex)
  --stream       which stream, by its index in --list (when one SSRC appears on several 5-tuples)
  --speed        1 = captured pace (default), 2 = twice as fast, max = as fast as possible`;

export interface CliIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Aborting it stops a replay early (the CLI wires SIGINT to it). */
  readonly signal?: AbortSignal;
}

export interface ReplayArgs {
  readonly file: string;
  readonly list: boolean;
  readonly target: UdpAddress | undefined;
  readonly ssrc: number | undefined;
  readonly stream: number | undefined;
  readonly speed: number | 'max';
}

export type ParsedReplayArgs = ReplayArgs | { readonly help: true } | { readonly usageError: string };

/** Parses argv (without node and script). */
export function parseReplayArgs(argv: readonly string[]): ParsedReplayArgs {
  const result = parseReplayArgsOrMessage(argv);
  return typeof result === 'string' ? { usageError: result } : result;
}

function parseReplayArgsOrMessage(argv: readonly string[]): ReplayArgs | { readonly help: true } | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        to: { type: 'string' },
        ssrc: { type: 'string' },
        stream: { type: 'string' },
        speed: { type: 'string', default: '1' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    return (err as Error).message;
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  if (positionals.length !== 1) return positionals.length === 0 ? 'missing the capture file' : `one capture file expected, got ${positionals.length}`;
  const target = values.to === undefined ? undefined : parseTarget(values.to);
  if (typeof target === 'string') return target;
  const ssrc = values.ssrc === undefined ? undefined : parseSsrc(values.ssrc);
  if (typeof ssrc === 'string') return ssrc;
  const stream = values.stream === undefined ? undefined : parseIndex(values.stream);
  if (typeof stream === 'string') return stream;
  const speed = parseSpeed(values.speed);
  if ('usageError' in speed) return speed.usageError;
  return { file: positionals[0]!, list: values.list || target === undefined, target, ssrc, stream, speed: speed.value };
}

/** `host:port` or `[v6addr]:port`. */
export function parseTarget(text: string): UdpAddress | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `--to must be host:port (or [ipv6]:port) with a port 1-65535, got '${text}'`;
  }
  return { address: m[1]!, port };
}

/** Decimal or 0x-prefixed hex, 0 … 2^32−1. */
export function parseSsrc(text: string): number | string {
  const ok = /^0x[0-9a-f]{1,8}$/i.test(text) || /^\d{1,10}$/.test(text);
  const n = ok ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return `--ssrc must be a 32-bit number, decimal or 0x hex, got '${text}'`;
  return n;
}

function parseIndex(text: string): number | string {
  return /^\d{1,6}$/.test(text) ? Number(text) : `--stream must be a stream index from --list, got '${text}'`;
}

function parseSpeed(text: string): { value: number | 'max' } | { usageError: string } {
  if (text === 'max') return { value: 'max' };
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(n > 0) || n > 1000) return { usageError: `--speed must be 'max' or a number above 0 and at most 1000, got '${text}'` };
  return { value: n };
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseReplayArgs(argv);
  if ('help' in args) {
    io.stdout(USAGE);
    return 0;
  }
  if ('usageError' in args) {
    io.stderr(`replay: ${args.usageError}\n${USAGE}`);
    return 2;
  }

  let loaded: { format: CaptureFormat; scan: RtpStreamScan; stats: CaptureStats };
  try {
    loaded = await loadStreams(args.file);
  } catch (err) {
    io.stderr(`replay: cannot read ${args.file}: ${describe(err)}`);
    return 1;
  }
  const { scan, stats } = loaded;
  if (stats.truncated) io.stderr('replay: warning: the capture ends mid-record; using the complete records before it');

  if (args.list) {
    io.stdout(`${args.file}: ${loaded.format}, ${stats.frames} frames, ${stats.datagrams} UDP datagrams, ${scan.streams.length} RTP streams` +
      ` (${scan.rtcpPackets} RTCP and ${scan.notRtpPackets} other UDP datagrams skipped)`);
    if (scan.streams.length > 0) io.stdout(streamTable(scan.streams));
    io.stdout(JSON.stringify({ file: args.file, format: loaded.format, streams: scan.streams.map(streamJson), rtcpPackets: scan.rtcpPackets, notRtpPackets: scan.notRtpPackets, stats }));
    return 0;
  }

  const pick = pickStream(scan.streams, args);
  if ('error' in pick) {
    io.stderr(`replay: ${pick.error}`);
    return pick.exitCode;
  }
  const { stream: picked } = pick;
  const target = args.target!;
  const where = `${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.port}`;
  io.stderr(`replaying ${formatSsrc(picked.ssrc)} (${picked.packetCount} packets, ${(picked.durationMs / 1000).toFixed(2)} s) to ${where} at speed ${args.speed}`);
  let summary: ReplaySummary;
  try {
    summary = await replayStream(picked.packets, {
      target,
      speed: args.speed,
      signal: io.signal,
      onProgress: (p) =>
        io.stderr(`  sent ${p.sent}/${p.total} packets, ${(p.mediaTimeMs / 1000).toFixed(1)} s of media in ${(p.elapsedMs / 1000).toFixed(1)} s`),
    });
  } catch (err) {
    io.stderr(`replay: ${describe(err)}`);
    return 1;
  }
  const l = summary.latenessMs;
  io.stderr(
    `${summary.aborted ? 'interrupted after' : 'sent'} ${summary.packets} packets, ${summary.bytes} bytes in ${(summary.durationMs / 1000).toFixed(2)} s;` +
      ` lateness p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms` +
      (summary.sendErrors > 0 ? `; ${summary.sendErrors} send errors` : ''),
  );
  const us = (ms: number): number => Math.round(ms * 1000) / 1000;
  io.stdout(
    JSON.stringify({
      file: args.file,
      ssrc: formatSsrc(picked.ssrc),
      target: where,
      speed: args.speed,
      ...summary,
      durationMs: us(summary.durationMs),
      latenessMs: { p50: us(l.p50), p99: us(l.p99), max: us(l.max) },
    }),
  );
  if (summary.aborted) return 130;
  return summary.sendErrors > 0 ? 1 : 0;
}

async function loadStreams(file: string): Promise<{ format: CaptureFormat; scan: RtpStreamScan; stats: CaptureStats }> {
  // A capture cut short by a crash still holds a useful stream: take what is complete.
  const reader = CaptureReader.open(await readFile(file), { tolerateTruncation: true });
  const scan = findRtpStreams(reader.datagrams());
  return { format: reader.format, scan, stats: reader.stats };
}

/**
 * The only stream, or the one --ssrc / --stream names. Otherwise a message listing the choices, with
 * exit code 1 when the capture lacks the stream and 2 when the arguments must say which one.
 */
export function pickStream(
  streams: readonly RtpStream[],
  args: Pick<ReplayArgs, 'ssrc' | 'stream'>,
): { stream: RtpStream } | { error: string; exitCode: 1 | 2 } {
  const noStream = (detail: string): { error: string; exitCode: 1 } => ({ error: `CG_REPLAY_NO_STREAM: ${detail}`, exitCode: 1 });
  if (streams.length === 0) return noStream('the capture holds no RTP stream');
  if (args.stream !== undefined) {
    const s = streams[args.stream];
    if (!s) return noStream(`no stream ${args.stream}; the capture has:\n${streamTable(streams)}`);
    if (args.ssrc !== undefined && s.ssrc !== args.ssrc) {
      return { error: `stream ${args.stream} has SSRC ${formatSsrc(s.ssrc)}, not ${formatSsrc(args.ssrc)}`, exitCode: 2 };
    }
    return { stream: s };
  }
  const matching = args.ssrc === undefined ? streams : streams.filter((s) => s.ssrc === args.ssrc);
  if (matching.length === 1) return { stream: matching[0]! };
  if (matching.length === 0) return noStream(`no stream with SSRC ${formatSsrc(args.ssrc!)}; the capture has:\n${streamTable(streams)}`);
  const how = args.ssrc === undefined ? 'choose one with --ssrc (or --stream)' : 'this SSRC is on several 5-tuples: choose one with --stream';
  return { error: `the capture has ${matching.length} RTP streams; ${how}:\n${streamTable(streams)}`, exitCode: 2 };
}

function endpoint(a: UdpAddress): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** A fixed-width table; start times are relative to the earliest stream. */
export function streamTable(streams: readonly RtpStream[]): string {
  const t0 = Math.min(...streams.map((s) => s.firstTimeUs));
  const rows = [['#', 'SSRC', 'source', 'destination', 'PT', 'packets', 'start s', 'duration s', 'gaps', 'lost']];
  streams.forEach((s, i) =>
    rows.push([
      String(i),
      formatSsrc(s.ssrc),
      endpoint(s.src),
      endpoint(s.dst),
      s.payloadTypes.join(','),
      String(s.packetCount),
      ((s.firstTimeUs - t0) / 1e6).toFixed(3),
      (s.durationMs / 1000).toFixed(3),
      String(s.seqGaps),
      String(s.lostPackets),
    ]),
  );
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

function streamJson(s: RtpStream): Record<string, unknown> {
  const { packets: _packets, ...info } = s;
  return { ...info, ssrcHex: formatSsrc(s.ssrc) };
}

function describe(err: unknown): string {
  if (isCallgateError(err)) return `${err.code}: ${err.message}`;
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const code = await main(process.argv.slice(2), {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    signal: controller.signal,
  });
  process.exitCode = code;
}
