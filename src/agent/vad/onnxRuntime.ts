/**
 * The slice of onnxruntime-node's API the Silero detector uses, typed here rather than imported:
 * onnxruntime-node is an optional dependency (45 MB of native library that some installs leave out),
 * and no type of the build may depend on an optional package being present — `npm run typecheck`
 * must pass after an `npm ci` that skipped it. The module itself is loaded only when Silero is chosen.
 */
export interface OrtTensor {
  readonly data: Float32Array | BigInt64Array | Int32Array | readonly unknown[];
}

export interface OrtSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor | undefined>>;
  release(): Promise<void>;
}

export interface OrtModule {
  readonly InferenceSession: { create(modelPath: string, options?: OrtSessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims?: readonly number[]) => OrtTensor;
}

/** A specifier TypeScript does not resolve, so a missing package is a load-time error, not a type error. */
const ONNXRUNTIME: string = 'onnxruntime-node';

/** Loads onnxruntime-node. */
export async function importOnnxRuntime(): Promise<OrtModule> {
  const mod = (await import(ONNXRUNTIME)) as OrtModule & { default?: OrtModule };
  // CommonJS package: under ESM its API may sit on `default`.
  return typeof mod.InferenceSession === 'object' || typeof mod.InferenceSession === 'function' ? mod : (mod.default as OrtModule);
}
