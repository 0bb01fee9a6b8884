import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What `npm run build` ships (tsconfig.build.json, what the Docker image runs): callgate's production
 * code, and none of its test scaffolding — fakes, test kits, fixture builders, test audio, the
 * `testing/` folders. Built here into a temporary folder, once for all the checks.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Names that only test scaffolding has. */
const SCAFFOLDING = /(\/testing\/|\.test\.|fake|fixture|testkit|testaudio|harness|mock)/i;

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out;
}

describe('the compiled build', () => {
  let outDir = '';
  let emitted: string[] = [];

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'callgate-build-'));
    await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], { cwd: ROOT });
    emitted = (await files(outDir)).map((f) => relative(outDir, f));
  }, 120_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('holds the gateway and its command-line tools', () => {
    expect(emitted).toEqual(expect.arrayContaining(['cli/start.js', 'app/Gateway.js', 'call/CallRunner.js', 'sip/SipGateway.js', 'webrtc/WebRtcDoor.js', 'agent/AgentSession.js']));
  });

  it('holds no test scaffolding', () => {
    expect(emitted.filter((f) => SCAFFOLDING.test(`/${f}`))).toEqual([]);
  });

  it('no shipped module imports test scaffolding (which the build would then be missing)', async () => {
    const offenders: string[] = [];
    for (const f of emitted.filter((e) => e.endsWith('.js'))) {
      const text = await readFile(join(outDir, f), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) if (SCAFFOLDING.test(m[1]!)) offenders.push(`${f} → ${m[1]}`);
    }
    expect(offenders).toEqual([]);
  });
});
