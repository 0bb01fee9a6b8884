import { FULL_SCALE } from './signal.js';
import { PIPELINE_RATE } from './types.js';

/**
 * Server-side echo cancellation: the caller's phone (a hybrid, a speakerphone, a browser without its
 * own canceller) sends part of the agent's voice back, a few to a few hundred ms later. The gateway knows
 * exactly what it sent — `reference()` gets every 20 ms frame as the caller's phone decodes it — so it
 * can find that delay, model the echo path with an adaptive filter and subtract the echo from what the
 * caller sends, leaving the caller's own voice.
 *
 *   delay: normalised cross-correlation of the two streams (at 4 kHz, over `searchWindowMs`), locked
 *          once two searches agree; the streams are indexed by sample counts, so network jitter (which
 *          moves when a frame arrives, not where it sits in the stream) does not move the delay.
 *   path:  NLMS over `taps` samples around that delay (`preDelayTaps` before it: the search is exact to
 *          a quarter millisecond, and a codec smears the echo a little).
 *   double talk: two filters (as Speex's MDF canceller does). A background filter adapts on every frame;
 *          the foreground filter, which makes the output, only takes its coefficients when the background
 *          cancels better. A frame with much more left over than the path's usual ERLE holds the
 *          caller's voice: what the background learnt from it is thrown away (it starts again from the
 *          foreground). A changed echo path lowers the usual ERLE within seconds, and is then learnt.
 *
 * Why written here: no maintained npm package offers an echo canceller for Node (speexdsp's and WebRTC's
 * are C/C++ without a published Node or WASM build), and the gateway's case is narrow — one reference,
 * a delay the streams' sample counts pin down — so a time-domain NLMS is enough: ~2 % of one core per
 * call while the agent talks (4.2 s of echo took 65–110 ms in the unit tests); nothing runs while it is
 * silent.
 */
export interface EchoCancellerOptions {
  /** Echo path delays searched, from what was sent to what comes back. */
  readonly maxDelayMs: number;
  /** Adaptive filter length at 16 kHz: the echo path's spread around its delay. */
  readonly taps: number;
  /** Taps placed before the found delay. */
  readonly preDelayTaps: number;
  /** NLMS step (0–1]: larger learns faster and settles noisier. */
  readonly stepSize: number;
  /** Audio correlated per delay search. */
  readonly searchWindowMs: number;
  /** How often the delay is searched while the agent talks (more often until it is found). */
  readonly searchEveryMs: number;
  /** A search counts only when the best normalised correlation reaches this. */
  readonly minCorrelation: number;
  /** The echo estimate must be this far over the residual (echo return loss enhancement) before `converged`. */
  readonly convergedErleDb: number;
  /** Reference quieter than this is no echo source: the filter neither runs nor adapts. */
  readonly minReferenceDbfs: number;
}

export const defaultEchoCancellerOptions = {
  /** 400 ms: carriers and loopback add 20–150 ms, a browser's or phone's jitter buffer up to ~200 more. */
  maxDelayMs: 400,
  /** 128 taps (8 ms): a line hybrid's echo spreads over a few ms; longer filters learn slower and cost more. */
  taps: 128,
  /** 24 taps (1.5 ms): the search is exact to 0.25 ms; codecs shift the echo's phase a little. */
  preDelayTaps: 24,
  /** 0.5: converges in ~0.3 s of speech; still stable through codec noise. */
  stepSize: 0.5,
  /** 500 ms: a few syllables, enough for one clear correlation peak. */
  searchWindowMs: 500,
  /** 400 ms; once locked, searches run 5× less often to follow a changed path (a jitter buffer resized). */
  searchEveryMs: 400,
  /** 0.4: echo through PCMU or Opus correlates at 0.6–0.95; unrelated speech under 0.2. */
  minCorrelation: 0.4,
  /** 10 dB: the residual is well under the echo, so the residual-based speech bar can be trusted. */
  convergedErleDb: 10,
  /** -55 dBFS: the line's idle noise. */
  minReferenceDbfs: -55,
} as const satisfies EchoCancellerOptions;

/** What `process()` found in one frame of the caller's audio. */
export interface EchoFrame {
  /**
   * The caller's frame with the estimated echo taken out; the input itself while the canceller is not
   * trusted (not converged, or the path moved) or when taking the estimate out would add sound.
   */
  readonly cleaned: Int16Array;
  /** Level of the echo estimate subtracted (dBFS); -Infinity when none. */
  readonly echoDbfs: number;
  /**
   * The level the cleaned frame must reach to be the caller rather than echo left over; -Infinity while
   * the canceller is not converged (the level-only echo guard decides then).
   */
  readonly barDbfs: number;
}

export interface EchoCancellerStats {
  /** Echo path delay found (ms), undefined before the first lock. */
  readonly delayMs: number | undefined;
  /** Smoothed echo return loss enhancement (dB) over frames with echo and no caller speech. */
  readonly erleDb: number;
  /** Its low quantile over frames of echo alone: what the speech bar trusts. */
  readonly erleLowDb: number;
  readonly converged: boolean;
  /** Frames with far more left than the echo path explains (the caller talking over the agent). */
  readonly doubleTalkFrames: number;
  readonly searches: number;
}

/** 4 kHz for the delay search: speech correlates well below 2 kHz, and it is 16× cheaper than 16 kHz. */
const DECIMATION = 4;
/**
 * Frame-to-frame smoothing of the ERLE estimate: it rises in ~200 ms and falls in ~2 s, so a caller
 * talking over the agent for a second (whose voice is "left over" too) barely moves it.
 */
const ERLE_RISE = 0.1;
const ERLE_FALL = 0.01;
/** A second correlation peak this close to the best makes the delay ambiguous. */
const AMBIGUOUS_PEAK = 0.9;
/** Caller audio 40 dB under the agent's while it talks: the line returns no echo. */
const NO_ECHO_RATIO = 1e-4;
/** A frame whose ERLE is this far under the usual has the caller in it. */
const DOUBLE_TALK_DB = 10;
/** Smoothing of the two filters' residual powers when comparing them (~100 ms). */
const RESIDUAL_SMOOTHING = 0.2;
/**
 * The speech bar: a caller frame must be louder than what the filter leaves of the echo in its worse
 * frames (a low quantile of the per-frame ERLE: codecs and new sounds leave more than the average says)
 * plus a margin; and no more than 20 dB of cancellation is ever trusted.
 */
const MAX_TRUSTED_ERLE_DB = 20;
/** Below this low-quantile ERLE the canceller is not trusted at all (see `converged`). */
const MIN_LOW_ERLE_DB = 6;
/** An echo-alone frame cancelled by less than this: the estimate misses the echo (a caller adds energy instead). */
const MISALIGNED_ERLE_DB = -2;
const BAR_MARGIN_DB = 3;
/** Tracks a low percentile (~20th) of the per-frame ERLE: steps down 4× faster than up. */
const LOW_FALL = 0.2;
const LOW_RISE = 0.05;
/** A frame at most 2 dB louder than its echo estimate holds echo alone (a caller as loud as it adds 3 dB). */
const ECHO_ALONE_RATIO = 10 ** (2 / 10);

export class EchoCanceller {
  private readonly opts: EchoCancellerOptions;
  /** Everything sent, at 16 kHz (normalised floats), in a ring indexed by `farCount`. */
  private readonly far: Float32Array;
  private farCount = 0;
  /** Both streams at 4 kHz, for the delay search. */
  private readonly farLow: Float32Array;
  private readonly nearLow: Float32Array;
  private nearCount = 0;
  /** near sample n echoes far sample n + offset (undefined until found). */
  private offset: number | undefined;
  /** The last search's offset, waiting for a second one to agree. */
  private candidate: number | undefined;
  /** Foreground (output) and background (adapting) filter coefficients, tap 0 the newest sample. */
  private readonly foreground: Float32Array;
  private readonly background: Float32Array;
  /** Smoothed residual power of each filter, for the copy decisions. */
  private foregroundResidual = 0;
  private backgroundResidual = 0;
  private readonly searchEvery: number;
  private sinceSearch = 0;
  /** `farCount` after the last frame louder than `minReferenceDbfs`: whether anything sent could still echo. */
  private lastLoudFar = -Infinity;
  private erleDb = 0;
  /** A low quantile of the per-frame ERLE over frames of echo alone (see BAR_MARGIN_DB). */
  private erleLowDb = 0;
  private doubleTalkFrames = 0;
  private searches = 0;
  /** Searches in a row that found no echo. */
  private fruitless = 0;
  private readonly minReferencePower: number;

  constructor(options: Partial<EchoCancellerOptions> = {}) {
    this.opts = { ...defaultEchoCancellerOptions, ...options };
    const ms = (v: number): number => Math.round((v * PIPELINE_RATE) / 1000);
    // The ring covers the longest delay, the search window and the filter, plus a second of slack for a
    // far stream that runs ahead of the near one (its first frames queue before the caller's arrive).
    this.far = new Float32Array(ms(this.opts.maxDelayMs + this.opts.searchWindowMs + 1000) + this.opts.taps);
    this.farLow = new Float32Array(Math.ceil(this.far.length / DECIMATION));
    this.nearLow = new Float32Array(Math.ceil(ms(this.opts.searchWindowMs + 100) / DECIMATION));
    this.foreground = new Float32Array(this.opts.taps);
    this.background = new Float32Array(this.opts.taps);
    this.searchEvery = ms(this.opts.searchEveryMs);
    this.minReferencePower = 10 ** (this.opts.minReferenceDbfs / 10);
  }

  /** One frame of what the caller's phone plays (the agent's audio as sent; silence as zeros). */
  reference(frame: Int16Array): void {
    decimateInto(this.farLow, frame, this.farCount);
    let power = 0;
    for (let i = 0; i < frame.length; i++) {
      const x = frame[i]! / FULL_SCALE;
      power += x * x;
      this.far[(this.farCount + i) % this.far.length] = x;
    }
    this.farCount += frame.length;
    if (frame.length > 0 && power / frame.length >= this.minReferencePower) this.lastLoudFar = this.farCount;
  }

  /** Takes the echo out of one frame of the caller's audio. */
  process(near: Int16Array): EchoFrame {
    const start = this.nearCount;
    decimateInto(this.nearLow, near, start);
    this.nearCount += near.length;
    // Nothing the caller's phone played recently could echo: nothing to do (and nothing to learn).
    const maxDelay = Math.round((this.opts.maxDelayMs * PIPELINE_RATE) / 1000);
    if (this.farCount - this.lastLoudFar > maxDelay + near.length) return { cleaned: near, echoDbfs: -Infinity, barDbfs: -Infinity };
    this.sinceSearch += near.length;
    // Locked: a slow watch for a changed path. Searches on a line with no echo at all (a phone or browser
    // cancelling its own) back off to every 3.2 s: each costs ~3 M multiply-adds.
    const every = this.converged ? this.searchEvery * 5 : this.searchEvery * 2 ** Math.min(this.fruitless, 3);
    if (this.sinceSearch >= every) {
      this.sinceSearch = 0;
      this.search();
    }
    if (this.offset === undefined) return { cleaned: near, echoDbfs: -Infinity, barDbfs: -Infinity };
    return this.cancel(near, start, this.offset);
  }

  get stats(): EchoCancellerStats {
    return {
      delayMs: this.offset === undefined ? undefined : this.delayMsFor(this.offset),
      erleDb: this.erleDb,
      erleLowDb: this.erleLowDb,
      converged: this.converged,
      doubleTalkFrames: this.doubleTalkFrames,
      searches: this.searches,
    };
  }

  /**
   * The filter cancels the echo: on average (`convergedErleDb`), and in its worse frames of late (the
   * low quantile falls within a few frames when the echo path moves, e.g. a phone's jitter buffer grew,
   * and the level-only guard must decide again until the new path is learnt).
   */
  get converged(): boolean {
    return this.learnt && this.erleLowDb >= MIN_LOW_ERLE_DB;
  }

  /** The filter has learnt a path (its average ERLE): frames far under it hold the caller. */
  private get learnt(): boolean {
    return this.offset !== undefined && this.erleDb >= this.opts.convergedErleDb;
  }

  /** The delay (ms) an offset means right now: how far behind the newest sent sample the echo is. */
  private delayMsFor(offset: number): number {
    return ((this.farCount - this.nearCount - offset) * 1000) / PIPELINE_RATE;
  }

  /**
   * Finds the offset at which the last `searchWindowMs` of the caller's audio best matches what was sent
   * (normalised cross-correlation at 4 kHz, delays 0…maxDelayMs behind the newest sent sample).
   */
  private search(): void {
    const window = Math.floor(((this.opts.searchWindowMs * PIPELINE_RATE) / 1000) / DECIMATION);
    const nearEnd = Math.floor(this.nearCount / DECIMATION); // exclusive, 4 kHz index
    const farEnd = Math.floor(this.farCount / DECIMATION);
    if (nearEnd < window) return;
    const maxLag = Math.floor((this.opts.maxDelayMs * PIPELINE_RATE) / 1000 / DECIMATION);
    const nearLen = this.nearLow.length;
    const farLen = this.farLow.length;
    let nearEnergy = 0;
    for (let i = nearEnd - window; i < nearEnd; i++) nearEnergy += this.nearLow[i % nearLen]! ** 2;
    if (nearEnergy === 0) return;
    this.searches++;
    // lag d: near index i pairs with far index i + (farEnd - nearEnd) - d (d samples behind "now").
    const scores = new Float32Array(maxLag + 1);
    let best = 0;
    let bestLag = -1;
    for (let d = 0; d <= maxLag; d++) {
      const shift = farEnd - nearEnd - d;
      const firstFar = nearEnd - window + shift;
      if (firstFar < 0 || firstFar < farEnd - farLen) continue; // not (or no longer) in the ring
      let dot = 0;
      let farEnergy = 0;
      for (let i = nearEnd - window; i < nearEnd; i++) {
        const f = this.farLow[(i + shift) % farLen]!;
        dot += this.nearLow[i % nearLen]! * f;
        farEnergy += f * f;
      }
      if (farEnergy === 0) continue;
      const c = dot / Math.sqrt(nearEnergy * farEnergy);
      scores[d] = c;
      if (c > best) {
        best = c;
        bestLag = d;
      }
    }
    // A second peak nearly as high elsewhere: the audio repeats itself (a tone, a held vowel, a
    // synthetic voice) and the delay is ambiguous. Locking on the wrong one would cancel nothing.
    const apart = (30 * PIPELINE_RATE) / 1000 / DECIMATION;
    for (let d = 0; d <= maxLag && bestLag >= 0; d++) {
      if (Math.abs(d - bestLag) > apart && scores[d]! > best * AMBIGUOUS_PEAK) return;
    }
    if (bestLag < 0 || best < this.opts.minCorrelation) {
      // Nothing in the caller's audio while the agent talked: a line without echo; search less often.
      let farEnergy = 0;
      for (let i = farEnd - window; i < farEnd; i++) farEnergy += this.farLow[((i % farLen) + farLen) % farLen]! ** 2;
      if (nearEnergy < farEnergy * NO_ECHO_RATIO) this.fruitless++;
      return;
    }
    this.fruitless = 0;
    const offset = (farEnd - nearEnd - bestLag) * DECIMATION;
    const agrees = (o: number | undefined): boolean => o !== undefined && Math.abs(o - offset) <= DECIMATION * 2;
    if (agrees(this.offset)) return;
    if (agrees(this.candidate)) {
      // Two searches agree on a new delay: the old filter modelled another path.
      this.offset = offset;
      this.candidate = undefined;
      this.foreground.fill(0);
      this.background.fill(0);
      this.foregroundResidual = this.backgroundResidual = 0;
      this.erleDb = this.erleLowDb = 0;
    } else {
      this.candidate = offset;
    }
  }

  private cancel(near: Int16Array, start: number, offset: number): EchoFrame {
    const { taps, preDelayTaps, stepSize } = this.opts;
    const fg = this.foreground;
    const bg = this.background;
    const n = near.length;
    // The far samples this frame's taps read, copied once: x[j] is far sample first + j. Echo cannot come
    // from audio not sent yet, nor from audio the ring has dropped: those read as zeros.
    const first = start + offset + preDelayTaps - taps + 1;
    const x = this.window(first, n + taps - 1);
    let refPower = 0;
    for (let i = 0; i < n; i++) refPower += x[i + taps - 1 - preDelayTaps]! ** 2;
    const farActive = refPower / n >= this.minReferencePower;
    const cleaned = new Int16Array(n);
    let nearPower = 0;
    let echoPower = 0;
    let fgPower = 0;
    let bgPower = 0;
    let norm = 1e-6;
    for (let j = 0; j < taps; j++) norm += x[j]! * x[j]!;
    for (let i = 0; i < n; i++) {
      // Tap t reads x[i + taps - 1 - t]: tap 0 is the newest sample, `preDelayTaps` ahead of the delay.
      if (i > 0) norm += x[i + taps - 1]! ** 2 - x[i - 1]! ** 2;
      let y = 0;
      let yb = 0;
      for (let t = 0, j = i + taps - 1; t < taps; t++, j--) {
        y += fg[t]! * x[j]!;
        yb += bg[t]! * x[j]!;
      }
      const v = near[i]! / FULL_SCALE;
      const e = v - y;
      const eb = v - yb;
      nearPower += v * v;
      echoPower += y * y;
      fgPower += e * e;
      bgPower += eb * eb;
      cleaned[i] = clip(e * FULL_SCALE);
      if (farActive) {
        const g = (stepSize * eb) / Math.max(norm, 1e-6);
        for (let t = 0, j = i + taps - 1; t < taps; t++, j--) bg[t]! += g * x[j]!;
      }
    }
    if (farActive && nearPower > 0 && fgPower > 0) {
      const erle = Math.min(40, 10 * Math.log10(nearPower / fgPower));
      // Far more left than the path leaves of an echo: the caller talks. What the background learnt
      // from this frame is (in part) the caller's voice, a waveform its taps can mimic for a few ms;
      // it would cancel less echo and more caller, and win the comparison. Drop it.
      const callerTalks = this.learnt && erle < this.erleDb - DOUBLE_TALK_DB;
      if (callerTalks) {
        this.doubleTalkFrames++;
        this.background.set(this.foreground);
        this.backgroundResidual = this.foregroundResidual;
      } else {
        this.compare(fgPower, bgPower);
      }
      this.erleDb += (erle > this.erleDb ? ERLE_RISE : ERLE_FALL) * (erle - this.erleDb);
      // Frames no louder than the echo they carry and no caller in them: echo alone. Their worse ERLEs set
      // the speech bar. No cancellation at all in such a frame means the path moved (the echo and the
      // estimate no longer line up): distrusted at once, not after the frames a turn needs to open.
      if (nearPower <= echoPower * ECHO_ALONE_RATIO) {
        if (erle < MISALIGNED_ERLE_DB) this.erleLowDb = Math.min(this.erleLowDb, erle);
        else if (!callerTalks) this.erleLowDb += (erle < this.erleLowDb ? LOW_FALL : LOW_RISE) * (erle - this.erleLowDb);
      }
    }
    const echoDbfs = echoPower > 0 ? 10 * Math.log10(echoPower / n) : -Infinity;
    // Untrusted, or more came out than went in (the line stopped echoing, and subtracting the estimate
    // would put the agent's voice into silence): the caller's audio goes on as it came.
    if (!this.converged || fgPower > nearPower * 4) return { cleaned: near, echoDbfs, barDbfs: -Infinity };
    const trusted = Math.max(0, Math.min(this.erleLowDb, MAX_TRUSTED_ERLE_DB));
    return { cleaned, echoDbfs, barDbfs: echoDbfs - trusted + BAR_MARGIN_DB };
  }

  /**
   * The background takes over when it has cancelled clearly better for a while (it learnt the path, or
   * a new one); it starts again from the foreground when it went clearly worse (it learnt the caller).
   */
  private compare(fgPower: number, bgPower: number): void {
    this.foregroundResidual += RESIDUAL_SMOOTHING * (fgPower - this.foregroundResidual);
    this.backgroundResidual += RESIDUAL_SMOOTHING * (bgPower - this.backgroundResidual);
    if (this.backgroundResidual < this.foregroundResidual * 0.7) {
      this.foreground.set(this.background);
      this.foregroundResidual = this.backgroundResidual;
    } else if (this.backgroundResidual > this.foregroundResidual * 4) {
      this.background.set(this.foreground);
      this.backgroundResidual = this.foregroundResidual;
    }
  }

  /** `length` far samples from absolute index `first`, zeros where the ring has none. */
  private window(first: number, length: number): Float32Array {
    const out = new Float32Array(length);
    const ring = this.far.length;
    const from = Math.max(first, this.farCount - ring);
    const to = Math.min(first + length, this.farCount);
    for (let k = from; k < to; k++) out[k - first] = this.far[k % ring]!;
    return out;
  }
}

/**
 * Writes `frame` (whose first sample is sample `count` of its stream) into `ring` at a quarter of the
 * rate, each output the mean of 4 inputs: a crude low-pass, enough for the delay search. Frames are
 * whole multiples of 4 samples (20 ms at 16 kHz is 320).
 */
function decimateInto(ring: Float32Array, frame: Int16Array, count: number): void {
  let sum = 0;
  for (let i = 0; i < frame.length; i++) {
    sum += frame[i]! / FULL_SCALE;
    if ((count + i) % DECIMATION === DECIMATION - 1) {
      ring[Math.floor((count + i) / DECIMATION) % ring.length] = sum / DECIMATION;
      sum = 0;
    }
  }
}

function clip(v: number): number {
  return Math.max(-FULL_SCALE, Math.min(FULL_SCALE - 1, Math.round(v)));
}
