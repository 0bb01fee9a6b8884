import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { describeWith } from '../support/tools.js';
import { GatewayProcesses } from './gatewayProcess.js';

/**
 * The curl commands of README.md and docs/*.md, run as written against a live gateway (`npm start`'s
 * program with its SIP door, as the docs assume), so none of them drifts from the API (issue 25: the
 * docs' style, `content-type: application/json` on every request, failed on a DELETE without a body).
 *
 * Every ```sh block that calls curl runs in its own bash, in document order (README first, then docs/ by
 * name), with the reader's variables set ($TOKEN, $CALLGATE_ADMIN_TOKEN, var/admin-token in the working
 * folder) and `localhost:8080` meaning the test's gateway; so do the one-line `curl …` commands quoted in
 * the text. Each curl must get a 2xx. A block that cannot run here says why in a comment right above it,
 * `<!-- not run: … -->`. docs/quickstart-admin.md is left out: tests/app/quickstart-admin.test.ts runs it
 * whole and checks what each step prints. The docs act on the reader's own tenants, `joes-pizza` and
 * `acme`: the test makes them first, as the reader would have.
 */
const ROOT = new URL('../../', import.meta.url);
const ADMIN = 'docs-curl-admin-token-0000000000000';
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix, CALLGATE_ADMIN_TOKEN: ADMIN });
const dirs: string[] = [];
const PRESUMED_TENANTS = [
  { id: 'joes-pizza', displayName: "Joe's Pizza" },
  { id: 'acme', displayName: 'Acme' },
];

afterAll(async () => {
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

export interface DocCommand {
  readonly file: string;
  /** 1-based line where the block or the quoted command starts. */
  readonly line: number;
  readonly script: string;
}

/** The curl-calling ```sh blocks of a markdown file and its quoted one-line `curl …` commands, in order. */
export function curlCommands(file: string, markdown: string): { run: DocCommand[]; notRun: { line: number; reason: string }[] } {
  const run: DocCommand[] = [];
  const notRun: { line: number; reason: string }[] = [];
  const lineOf = (index: number): number => markdown.slice(0, index).split('\n').length;
  const blocks = [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)];
  for (const m of blocks) {
    const body = m[1]!;
    if (!/(^|\s|\()curl\s/m.test(body)) continue;
    const before = markdown.slice(0, m.index).trimEnd();
    const skip = /<!-- not run: ([^>]+?) -->$/.exec(before);
    if (skip) notRun.push({ line: lineOf(m.index!), reason: skip[1]! });
    else run.push({ file, line: lineOf(m.index!), script: body });
  }
  // Quoted commands in the text (not inside a fenced block).
  const fenced = [...markdown.matchAll(/^```[\s\S]*?^```$/gm)].map((m) => [m.index!, m.index! + m[0].length] as const);
  for (const m of markdown.matchAll(/`(curl [^`\n]+)`/g)) {
    if (fenced.some(([a, b]) => m.index! >= a && m.index! < b)) continue;
    run.push({ file, line: lineOf(m.index!), script: `${m[1]!}\n` });
  }
  return { run: run.sort((a, b) => a.line - b.line), notRun };
}

/** Every curl in the script goes through this: the status line is logged, the body printed as curl would. */
const WRAPPER = String.raw`
curl() {
  local out code
  out=$(mktemp)
  code=$(command curl "$@" -sS -o "$out" -w '%{http_code}') || true
  printf '%s\t%s\n' "$code" "$(printf '%s ' "$@" | tr '\n' ' ')" >> "$CURL_LOG"
  cat "$out"
  rm -f "$out"
}
`;

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describeWith(['drachtio', 'rtpengine', 'pocketsphinx'], 'the curl commands in README.md and docs/*.md', () => {
  it('each gets a 2xx from a live gateway, as written; GET, POST, PATCH and DELETE with the docs\' content-type header among them', async () => {
    const files = ['README.md', ...(await readdir(new URL('docs/', ROOT))).filter((f) => f.endsWith('.md') && f !== 'quickstart-admin.md').sort().map((f) => `docs/${f}`)];
    const commands: DocCommand[] = [];
    for (const file of files) {
      const { run, notRun } = curlCommands(file, await readFile(new URL(file, ROOT), 'utf8'));
      commands.push(...run);
      for (const n of notRun) expect(n.reason.trim().length, `${file}:${n.line} says why it is not run`).toBeGreaterThan(10);
    }
    expect(commands.length).toBeGreaterThanOrEqual(6);

    const gw = await gateways.start({
      CALLGATE_SIP: '1',
      SIP_PORT: String(await freePort()),
      RTPENGINE_PORT_MIN: '60300',
      RTPENGINE_PORT_MAX: '60499',
      CALLGATE_SECRET_KEY: randomBytes(32).toString('base64'),
      // The docs' webhook URLs stand for the reader's server (api.example.com): saving one resolves its
      // host, which fails for a placeholder (and on a machine without DNS). Allowing private destinations
      // skips that lookup; everything else about the request is checked as for anyone.
      CALLGATE_WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    const api = (path: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${gw.base}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } });
    for (const t of PRESUMED_TENANTS) expect((await api('/v1/tenants', { method: 'POST', body: JSON.stringify(t) })).status).toBe(201);

    // The reader's terminal: their token in var/admin-token (as `npm start` keeps it) and in the variables.
    const dir = await mkdtemp(join(tmpdir(), 'callgate-docs-curl-'));
    dirs.push(dir);
    await mkdir(join(dir, 'var'));
    await writeFile(join(dir, 'var', 'admin-token'), `${ADMIN}\n`);
    const log = join(dir, 'curl.log');
    const host = new URL(gw.base).host;
    const failures: string[] = [];
    const seen: string[] = [];
    for (const c of commands) {
      await writeFile(log, '');
      const script = c.script.replaceAll('http://localhost:8080', gw.base).replaceAll('localhost:8080', host);
      const r = spawnSync('bash', ['-c', `set -uo pipefail\n${WRAPPER}\n${script}`], {
        cwd: dir,
        env: { ...process.env, TOKEN: ADMIN, CALLGATE_ADMIN_TOKEN: ADMIN, CURL_LOG: log },
        encoding: 'utf8',
        timeout: 30_000,
      });
      const calls = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]);
      if (calls.length === 0) failures.push(`${c.file}:${c.line}: no curl ran (bash exit ${r.status}: ${r.stderr.trim()})`);
      for (const [code, args] of calls) {
        seen.push(`${/-X (\w+)/.exec(args)?.[1] ?? (/(^|\s)(-d|--data)\s/.test(args) ? 'POST' : 'GET')}${/content-type: application\/json/i.test(args) ? ' json' : ''}`);
        if (!/^2\d\d$/.test(code)) failures.push(`${c.file}:${c.line}: ${code} for curl ${args}\n${r.stdout.slice(-600)}`);
      }
    }
    process.stderr.write(`docs-curl: ${seen.length} curl calls from ${commands.length} blocks and quoted commands: ${[...new Set(seen)].join(', ')}\n`);
    expect(failures).toEqual([]);
    for (const form of ['GET', 'POST json', 'PATCH json', 'DELETE json']) expect(seen, `a ${form} command in the docs`).toContain(form);
    gw.proc.kill('SIGTERM');
  }, 90_000);
});
