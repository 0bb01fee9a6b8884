/**
 * The WAV files the softphone drivers (Baresip, Linphone) exchange with the phones. Not media/wav.ts's
 * decodeWav: that one is strict (mono, sizes checked against the file), and a phone's recording of a
 * call still up is neither (stereo Opus, a data size of 0 until the file is closed), so its data is
 * read to the end of the file and its channels are averaged.
 */
export interface Recording {
  readonly samples: Int16Array;
  readonly sampleRate: number;
}

/** A 16-bit PCM WAV of any channel count → mono; a data size of 0 (still recording) reads to the end of the file. */
export function recordedMono(bytes: Buffer): Recording {
  if (bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let offset = 12;
  let channels = 1;
  let sampleRate = 0;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      channels = bytes.readUInt16LE(body + 2);
      sampleRate = bytes.readUInt32LE(body + 4);
      if (bytes.readUInt16LE(body + 14) !== 16) throw new Error('not 16-bit PCM');
    } else if (id === 'data') {
      const end = size === 0 || body + size > bytes.length ? bytes.length : body + size;
      return interleavedToMono(bytes.subarray(body, end), channels, sampleRate);
    }
    offset = body + size + (size % 2);
  }
  throw new Error('no data chunk');
}

/** Interleaved 16-bit little-endian PCM, to the last whole frame, with its channels averaged. */
export function interleavedToMono(data: Buffer, channels: number, sampleRate: number): Recording {
  const frames = Math.floor(data.length / (2 * channels));
  const samples = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += data.readInt16LE(2 * (i * channels + c));
    samples[i] = Math.round(sum / channels);
  }
  return { samples, sampleRate };
}

/** A quiet room (faint noise, so nothing reads as a dead line) as a 16-bit PCM WAV for a phone's microphone. */
export function quietRoom(format: { rate: number; channels: number }, seconds: number): Buffer {
  const frames = format.rate * seconds;
  const data = Buffer.alloc(frames * format.channels * 2);
  for (let i = 0; i < frames * format.channels; i++) data.writeInt16LE(Math.round((Math.random() - 0.5) * 20), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(format.channels, 22);
  header.writeUInt32LE(format.rate, 24);
  header.writeUInt32LE(format.rate * format.channels * 2, 28);
  header.writeUInt16LE(format.channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
