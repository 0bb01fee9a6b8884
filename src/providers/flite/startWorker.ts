import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { CallgateError } from '../../errors.js';

/**
 * Starts a worker_threads Worker whose entry is a module of this project, however the project is running:
 *
 * - compiled JavaScript (production): the entry is a `.js` file next to the caller and Node loads it
 *   as it is. Production needs nothing else (no tsx, no flags) as long as `tsc`'s output keeps the
 *   worker file beside the caller; a bundler would have to emit it as a separate entry.
 * - TypeScript source, under tsx (`npx tsx`, the CLI, `npm run bench:*`) or vitest: the entry is a
 *   `.ts` file and the new thread needs a TypeScript loader of its own. Neither parent's loader reaches
 *   it: vitest transforms only inside its own module runner, and on Node 20 tsx registers its hooks on
 *   the main thread only (tsx checks `isMainThread` before Node 22.22), so `execArgv: ['--import', 'tsx']`
 *   starts a worker that still cannot read `.ts` (tried: "Unknown file extension .ts"). What does work
 *   in both, and on newer Node too, is tsx's documented `tsImport()` API, which registers a loader scoped
 *   to one import graph: a two-line bootstrap (eval'd, so no extra file has to survive compilation)
 *   imports tsx's API from the path resolved here and `tsImport`s the entry. tsx is a devDependency,
 *   needed only to run from source.
 *
 * Name the entry with `sourceOrCompiled('x', import.meta.url)`: x.ts from source, x.js once compiled.
 */
export function startWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const bootstrap = [
    `import(${JSON.stringify(tsxApiUrl())})`,
    `  .then((tsx) => tsx.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)}));`,
  ].join('\n');
  // A rejection here is unhandled in the worker, so it surfaces as the Worker's 'error' event.
  return new Worker(bootstrap, { ...options, eval: true });
}

/** `./name.ts` beside `callerUrl` when the caller runs from source, `./name.js` when it was compiled. */
export function sourceOrCompiled(name: string, callerUrl: string): URL {
  const extension = fileURLToPath(callerUrl).endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${extension}`, callerUrl);
}

let tsxApi: string | undefined;

function tsxApiUrl(): string {
  if (tsxApi !== undefined) return tsxApi;
  try {
    // Resolved from this file, not in the worker (an eval'd worker resolves from the working directory),
    // and with import conditions: tsx's CommonJS build of this API cannot register from a worker.
    tsxApi = import.meta.resolve('tsx/esm/api');
    return tsxApi;
  } catch (err) {
    throw new CallgateError('CG_INTERNAL', 'running a worker from TypeScript source needs the tsx devDependency', { cause: err });
  }
}
