import { mkdirSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { CaptureError } from '../../errors.js';
import type { PacketTap, TapDirection, UdpAddress } from './PacketTap.js';
import { defaultPcapFileWriterOptions, PcapFileWriter, type PcapFileWriterOptions, type PcapWriterStats } from './pcapWriter.js';

export type PcapRecorderOptions = PcapFileWriterOptions;
export const defaultPcapRecorderOptions = defaultPcapFileWriterOptions;

/**
 * Records one leg's datagrams, both directions, into a libpcap file. libpcap has no direction field:
 * the direction is in the addresses (src is callgate's socket for 'out').
 */
export class PcapRecorder implements PacketTap {
  private readonly writer: PcapFileWriter;

  constructor(path: string, options: Partial<PcapRecorderOptions> = {}) {
    this.writer = new PcapFileWriter(path, options);
  }

  get path(): string {
    return this.writer.path;
  }

  get stats(): Readonly<PcapWriterStats> {
    return this.writer.stats;
  }

  /** Set when the file could not be written (also reported once through `onError`). */
  get error(): CaptureError | undefined {
    return this.writer.error;
  }

  /** Copies `bytes` into the record at once, so the endpoint may reuse its buffer. */
  onPacket(_direction: TapDirection, src: UdpAddress, dst: UdpAddress, bytes: Uint8Array, timeUs: number): void {
    this.writer.write({ timeUs, src, dst, payload: bytes });
  }

  /**
   * Flushes and closes the file. Never rejects: a failed capture must not fail the call that owns it;
   * the failure was already reported through `onError` and stays readable in `error`.
   */
  close(): Promise<void> {
    return this.writer.close().catch(() => undefined);
  }
}

export interface RecorderIds {
  readonly callId: string;
  readonly legId: string;
}

/** Longest id kept in a file name; SIP Call-IDs can be long, file names have limits. */
const MAX_ID_CHARS = 100;

/**
 * Makes an id safe as one path component: only [A-Za-z0-9._-] survive, and a leading dot is replaced
 * so no name can be `.`, `..` or hidden. Call-IDs come from the network and are attacker-chosen.
 */
export function sanitizeCaptureId(id: string): string {
  const cleaned = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_').slice(0, MAX_ID_CHARS);
  return cleaned === '' ? '_' : cleaned;
}

/** `${dir}/${callId}-${legId}.pcap` with both ids sanitised; throws if the result leaves `dir` (it cannot). */
export function captureFilePath(dir: string, ids: RecorderIds): string {
  const base = resolve(dir);
  const path = join(base, `${sanitizeCaptureId(ids.callId)}-${sanitizeCaptureId(ids.legId)}.pcap`);
  if (!path.startsWith(base + sep)) throw new CaptureError('CG_PCAP_WRITE_FAILED', 'capture path escapes CAPTURE_DIR');
  return path;
}

/**
 * A recorder for one leg when CAPTURE_DIR is set, else undefined. Creates the directory at leg setup
 * (a synchronous mkdir there costs microseconds; nothing synchronous happens per packet). Never
 * throws: if the directory cannot be created, `onError` gets CG_PCAP_WRITE_FAILED and the leg runs
 * without a capture, since debugging aid must not be able to fail a call.
 */
export function createRecorderFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  ids: RecorderIds,
  options: Partial<PcapRecorderOptions> = {},
): PcapRecorder | undefined {
  const dir = env['CAPTURE_DIR'];
  if (dir === undefined || dir.trim() === '') return undefined;
  try {
    mkdirSync(resolve(dir), { recursive: true });
    return new PcapRecorder(captureFilePath(dir, ids), options);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
    options.onError?.(new CaptureError('CG_PCAP_WRITE_FAILED', `cannot create CAPTURE_DIR: ${code}`, { cause, details: { dir } }));
    return undefined;
  }
}
