import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { createVad, defaultVadOptions, resolveVadOptions, speechThreshold, type VadOptions } from './createVad.js';
import { loadedSileroSessions } from './SileroDetector.js';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Creates a detector of `engine` in a fresh Node process, scores one frame, and reports whether
 * onnxruntime's native library got mapped into that process (importing onnxruntime-node maps it).
 */
async function loadsOnnxruntime(engine: string): Promise<{ name: string; onnxruntime: boolean }> {
  const script = `
    import { readFileSync } from 'node:fs';
    const { createVad } = await import('./src/agent/vad/createVad.ts');
    const d = await createVad({ engine: process.argv[1] });
    d.process(new Int16Array(320));
    d.close();
    console.log(JSON.stringify({ name: d.name, onnxruntime: readFileSync('/proc/self/maps', 'utf8').includes('onnxruntime') }));
  `;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, engine], {
    cwd: repoRoot,
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { name: string; onnxruntime: boolean };
}

function configError(options: Partial<VadOptions>): unknown {
  try {
    resolveVadOptions(options);
    return undefined;
  } catch (err) {
    return err;
  }
}

describe('createVad', () => {
  it('defaults to fvad with a 0.5 threshold; Silero has its own threshold', () => {
    expect(resolveVadOptions()).toEqual(defaultVadOptions);
    expect(defaultVadOptions.engine).toBe('fvad');
    expect(speechThreshold()).toBe(0.5);
    expect(speechThreshold({ engine: 'silero', sileroThreshold: 0.6, fvadThreshold: 0.9 })).toBe(0.6);
    expect(speechThreshold({ engine: 'fvad', sileroThreshold: 0.6 })).toBe(0.5);
    // An explicit undefined keeps the default.
    expect(resolveVadOptions({ engine: undefined, fvadMode: undefined }).fvadMode).toBe(3);
  });

  it('rejects bad options with CG_AGENT_CONFIG_INVALID', () => {
    const bad: Partial<VadOptions>[] = [
      { engine: 'webrtc' as 'fvad' },
      { fvadMode: 4 as 3 },
      { fvadThreshold: 0 },
      { sileroThreshold: 1.5 },
      { sileroThreshold: Number.NaN },
      { sileroMaxQueuedWindows: -1 },
      { sileroMaxQueuedWindows: 1.5 },
    ];
    for (const options of bad) {
      const err = configError(options);
      expect(err, JSON.stringify(options)).toBeInstanceOf(CallgateError);
      expect((err as CallgateError).code).toBe('CG_AGENT_CONFIG_INVALID');
    }
  });

  it('makes the engine asked for', async () => {
    const fvad = await createVad({ fvadMode: 1 });
    const silero = await createVad({ engine: 'silero' });
    try {
      expect(fvad.name).toBe('fvad');
      expect(silero.name).toBe('silero');
      expect(fvad.process(new Int16Array(320))).toBe(0);
      expect(silero.process(new Int16Array(320))).toBe(0);
    } finally {
      fvad.close();
      silero.close();
    }
    await expect.poll(() => loadedSileroSessions()).toBe(0);
  });

  it('reports a Silero model that cannot load as CG_VAD_UNAVAILABLE', async () => {
    await expect(createVad({ engine: 'silero', sileroModelPath: '/nonexistent/silero.onnx' })).rejects.toSatisfy(
      (err: unknown) => err instanceof CallgateError && err.code === 'CG_VAD_UNAVAILABLE',
    );
  });

  it('never loads onnxruntime unless Silero is chosen', async () => {
    expect(await loadsOnnxruntime('fvad')).toEqual({ name: 'fvad', onnxruntime: false });
    // The probe can see it: with Silero, the library is there.
    expect(await loadsOnnxruntime('silero')).toEqual({ name: 'silero', onnxruntime: true });
  });
});
