import { readFile, writeFile } from 'node:fs/promises';
import { CaptureError } from '../errors.js';

/** Mono 16-bit PCM, the only audio callgate reads from or writes to WAV files. */
export interface WavAudio {
  readonly samples: Int16Array;
  /** Hz; any positive integer is accepted on read (the caller resamples if it needs a pipeline rate). */
  readonly sampleRate: number;
}

/** Size of the header `encodeWav` writes: RIFF (12) + fmt (8 + 16) + data chunk header (8). */
export const WAV_HEADER_BYTES = 44;

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** KSDATAFORMAT_SUBTYPE_PCM as it is laid out on disk: 00000001-0000-0010-8000-00aa00389b71. */
const PCM_SUBFORMAT_GUID = Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71);
/** Rates above this are not audio we could mean; it also keeps byteRate arithmetic in 32 bits. */
const MAX_SAMPLE_RATE = 768_000;
/** The data chunk size must fit the 32-bit RIFF length fields. */
const MAX_DATA_BYTES = 0xffff_ffff - (WAV_HEADER_BYTES - 8);

function malformed(reason: string): CaptureError {
  return new CaptureError('CG_WAV_MALFORMED', reason);
}

function fourcc(view: DataView, offset: number): string {
  return String.fromCharCode(view.getUint8(offset), view.getUint8(offset + 1), view.getUint8(offset + 2), view.getUint8(offset + 3));
}

interface FmtInfo {
  readonly sampleRate: number;
}

function parseFmt(view: DataView, offset: number, size: number): FmtInfo {
  if (size < 16) throw malformed(`fmt chunk is ${size} bytes, needs at least 16`);
  let format = view.getUint16(offset, true);
  const channels = view.getUint16(offset + 2, true);
  const sampleRate = view.getUint32(offset + 4, true);
  const byteRate = view.getUint32(offset + 8, true);
  const blockAlign = view.getUint16(offset + 12, true);
  const bitsPerSample = view.getUint16(offset + 14, true);

  if (format === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) throw malformed(`WAVE_FORMAT_EXTENSIBLE fmt chunk is ${size} bytes, needs 40`);
    const extensionSize = view.getUint16(offset + 16, true);
    if (extensionSize < 22) throw malformed(`WAVE_FORMAT_EXTENSIBLE extension is ${extensionSize} bytes, needs 22`);
    const validBits = view.getUint16(offset + 18, true);
    if (validBits !== 16) throw malformed(`WAVE_FORMAT_EXTENSIBLE has ${validBits} valid bits per sample, expected 16`);
    for (let i = 0; i < PCM_SUBFORMAT_GUID.length; i++) {
      if (view.getUint8(offset + 24 + i) !== PCM_SUBFORMAT_GUID[i]) throw malformed('WAVE_FORMAT_EXTENSIBLE subformat is not PCM');
    }
    format = WAVE_FORMAT_PCM;
  }
  if (format !== WAVE_FORMAT_PCM) throw malformed(`format tag 0x${format.toString(16).padStart(4, '0')} is not PCM (0x0001)`);
  if (channels !== 1) throw malformed(`${channels} channels, expected mono`);
  if (bitsPerSample !== 16) throw malformed(`${bitsPerSample} bits per sample, expected 16`);
  if (sampleRate === 0 || sampleRate > MAX_SAMPLE_RATE) throw malformed(`sample rate ${sampleRate} Hz is out of range 1..${MAX_SAMPLE_RATE}`);
  if (blockAlign !== 2) throw malformed(`block align ${blockAlign}, expected 2 for 16-bit mono`);
  if (byteRate !== sampleRate * 2) throw malformed(`byte rate ${byteRate} does not match ${sampleRate} Hz 16-bit mono (${sampleRate * 2})`);
  return { sampleRate };
}

/**
 * Parses a RIFF WAVE file holding 16-bit PCM mono. Chunks other than fmt and data (LIST, fact, cue …)
 * are skipped. Throws CaptureError CG_WAV_MALFORMED naming the first problem found.
 *
 * Every length read from the file is checked against the bytes actually present before it is used,
 * so a hostile header cannot make us allocate more than the input's own size.
 */
export function decodeWav(bytes: Uint8Array): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12) throw malformed(`file is ${bytes.byteLength} bytes, shorter than the 12-byte RIFF header`);
  if (fourcc(view, 0) !== 'RIFF') throw malformed(`starts with "${fourcc(view, 0)}", not "RIFF"`);
  if (fourcc(view, 8) !== 'WAVE') throw malformed(`RIFF form type is "${fourcc(view, 8)}", not "WAVE"`);
  const riffSize = view.getUint32(4, true);
  if (riffSize < 4) throw malformed(`RIFF size ${riffSize} is too small to hold the form type`);
  // Trust the RIFF size only as far as the bytes go: a larger claim means a truncated file and is
  // reported on the chunk that runs off the end; a smaller one ends the chunk walk early.
  const end = Math.min(bytes.byteLength, 8 + riffSize);

  let fmt: FmtInfo | undefined;
  let offset = 12;
  while (offset + 8 <= end) {
    const id = fourcc(view, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (size > end - body) throw malformed(`"${id}" chunk at byte ${offset} declares ${size} bytes but only ${end - body} remain`);
    if (id === 'fmt ') {
      if (fmt) throw malformed('more than one fmt chunk');
      fmt = parseFmt(view, body, size);
    } else if (id === 'data') {
      if (!fmt) throw malformed('data chunk comes before the fmt chunk');
      if (size % 2 !== 0) throw malformed(`data chunk is ${size} bytes, not a whole number of 16-bit samples`);
      const samples = new Int16Array(size / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(body + 2 * i, true);
      return { samples, sampleRate: fmt.sampleRate };
    }
    // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte.
    offset = body + size + (size % 2);
  }
  throw malformed(fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Writes the canonical 44-byte header (PCM, mono, 16-bit) followed by the samples, little-endian. */
export function encodeWav(audio: WavAudio): Buffer {
  const { samples, sampleRate } = audio;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate > MAX_SAMPLE_RATE) {
    throw new CaptureError('CG_WAV_MALFORMED', `cannot write sample rate ${sampleRate} Hz`);
  }
  const dataBytes = samples.length * 2;
  if (dataBytes > MAX_DATA_BYTES) throw new CaptureError('CG_WAV_MALFORMED', `${samples.length} samples do not fit a RIFF file`);
  const out = Buffer.alloc(WAV_HEADER_BYTES + dataBytes);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(WAV_HEADER_BYTES - 8 + dataBytes, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i] ?? 0, WAV_HEADER_BYTES + 2 * i);
  return out;
}

export async function readWavFile(path: string): Promise<WavAudio> {
  return decodeWav(await readFile(path));
}

export async function writeWavFile(path: string, audio: WavAudio): Promise<void> {
  await writeFile(path, encodeWav(audio));
}
