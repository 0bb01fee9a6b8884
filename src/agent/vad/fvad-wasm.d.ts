/**
 * Types for npm `@echogarden/fvad-wasm` 0.2.0, which ships none: libfvad (the WebRTC VAD) compiled with
 * emscripten. Only what FvadDetector uses is declared. Handles and pointers are byte addresses in the
 * module's heap; functions that can fail return -1.
 */
declare module '@echogarden/fvad-wasm' {
  export interface FvadWasmModule {
    /** A new VAD instance (mode 0, 8 kHz until set), or 0 when out of memory. */
    _fvad_new(): number;
    _fvad_free(handle: number): void;
    /** Clears all state and puts mode and sample rate back to their defaults (0, 8 kHz): set them again. */
    _fvad_reset(handle: number): void;
    /** 0 (quality) … 3 (very aggressive); 0 on success, -1 for a bad mode. */
    _fvad_set_mode(handle: number, mode: number): number;
    /** 8000, 16000, 32000 or 48000; 0 on success, -1 otherwise. */
    _fvad_set_sample_rate(handle: number, sampleRate: number): number;
    /** 1 speech, 0 non-speech, -1 for a frame that is not 10, 20 or 30 ms long. */
    _fvad_process(handle: number, frame: number, length: number): number;
    _malloc(bytes: number): number;
    _free(pointer: number): void;
    /** A view of the heap: replaced by a new one whenever the heap grows, so read it at each use. */
    readonly HEAP16: Int16Array;
  }
  /** The emscripten factory: instantiates fvad.wasm (read from beside fvad.js) into a new module. */
  export default function fvad(moduleArg?: object): Promise<FvadWasmModule>;
}
