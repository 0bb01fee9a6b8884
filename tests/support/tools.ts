import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';
import { isPocketsphinxInstalled } from '../../src/providers/pocketsphinx/options.js';
import { findDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { findOnPath, isExecutable } from '../../src/util/executable.js';

/**
 * The programs outside Node that the suite drives, and the one rule for a test that needs one which is
 * missing: under `CI=true` the test FAILS with one line naming the tool and how to get it (a CI run
 * that quietly skipped a whole door would protect nobody); elsewhere it SKIPS with that same line, so
 * a contributor without, say, Chromium can still run the rest.
 *
 * `npm test` installs all of them on Debian (scripts/ensure-deps.sh), except drachtio-server, which is
 * in no registry and is built outside the repository.
 */
export type Tool = 'drachtio' | 'rtpengine' | 'sipp' | 'tcpdump' | 'tshark' | 'chromium' | 'pocketsphinx' | 'redis-server' | 'compose' | 'coturn' | 'baresip' | 'linphone';

/** Debian's Chromium, driven by playwright-core (its own browser download does not work offline). */
export const CHROMIUM = '/usr/bin/chromium';

const FROM_ENSURE_DEPS = '`npm test` installs it (scripts/ensure-deps.sh)';

/** Each tool: undefined when present, else the one line that says what is missing and how to get it. */
const checks: Record<Tool, () => string | undefined> = {
  drachtio: () => {
    if (findDrachtio()) return undefined;
    const explicit = process.env['DRACHTIO_BIN'];
    // DRACHTIO_BIN is the only place looked at when it is set: a wrong path is reported, never replaced.
    return explicit
      ? `drachtio-server not found at DRACHTIO_BIN=${explicit} (not an executable file): fix DRACHTIO_BIN or unset it to search PATH and ../shared/bin/drachtio`
      : 'drachtio-server not found: set DRACHTIO_BIN, put `drachtio` on PATH, or keep a build at ../shared/bin/drachtio beside this checkout or the one it was cloned from (it is built outside this repository)';
  },
  rtpengine: () => (findOnPath('rtpengine') ? undefined : `rtpengine not found on PATH: Debian package rtpengine-daemon; ${FROM_ENSURE_DEPS}`),
  sipp: () => (findOnPath('sipp') ? undefined : `sipp not found on PATH: Debian package sip-tester; ${FROM_ENSURE_DEPS}`),
  tcpdump: () => (findOnPath('tcpdump') ? undefined : `tcpdump not found on PATH: Debian package tcpdump; ${FROM_ENSURE_DEPS}`),
  tshark: () => (findOnPath('tshark') ? undefined : `tshark not found on PATH: Debian package tshark; ${FROM_ENSURE_DEPS}`),
  chromium: () => (isExecutable(CHROMIUM) ? undefined : `Chromium not found at ${CHROMIUM}: Debian package chromium; ${FROM_ENSURE_DEPS}`),
  pocketsphinx: () =>
    isPocketsphinxInstalled() ? undefined : `pocketsphinx_continuous or its en-us model not found: Debian packages pocketsphinx and pocketsphinx-en-us; ${FROM_ENSURE_DEPS}`,
  'redis-server': () => (findOnPath('redis-server') ? undefined : `redis-server not found on PATH: Debian package redis-server; ${FROM_ENSURE_DEPS}`),
  coturn: () => (findOnPath('turnserver') ? undefined : `turnserver not found on PATH: Debian package coturn; ${FROM_ENSURE_DEPS}`),
  baresip: () => (findOnPath('baresip') ? undefined : `baresip not found on PATH: Debian package baresip; ${FROM_ENSURE_DEPS}`),
  linphone: () => (findOnPath('linphonec') ? undefined : `linphonec not found on PATH: Debian package linphone-cli; ${FROM_ENSURE_DEPS}`),
  compose: () => (composeClient() ? undefined : `no Compose client (docker compose or docker-compose): Debian package docker-compose; ${FROM_ENSURE_DEPS}`),
};

let compose: { client: string[] | undefined } | undefined;

/** `docker compose` (the plugin) or Debian's `docker-compose`, as [command, ...leading args]; probed once. */
export function composeClient(): string[] | undefined {
  compose ??= { client: probeCompose() };
  return compose.client;
}

function probeCompose(): string[] | undefined {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore', timeout: 10_000 });
    return ['docker', 'compose'];
  } catch {
    const standalone = findOnPath('docker-compose');
    return standalone ? [standalone] : undefined;
  }
}

const seen = new Map<Tool, string | undefined>();

/** The line for the first of `tools` that is missing, or undefined when all are present. */
export function missingTool(...tools: Tool[]): string | undefined {
  for (const tool of tools) {
    if (!seen.has(tool)) seen.set(tool, checks[tool]());
    const line = seen.get(tool);
    if (line) return line;
  }
  return undefined;
}

/** Whether this run is CI, where a missing tool is a failure. */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env['CI'] ?? '');
}

/**
 * In place of a test (or a block of tests) whose tool is missing: one test that fails under CI with
 * `line`, or is skipped with it elsewhere. The line is also printed once, so a run's log says it.
 */
export function testMissing(line: string, name?: string): void {
  console.warn(line);
  const title = name ? `${name}: ${line}` : line;
  if (isCi()) {
    it(title, () => {
      throw new Error(`missing tool under CI=true — ${line}`);
    });
  } else {
    it.skip(title, () => undefined);
  }
}

/**
 * `describe(name, body)` when every tool is present; otherwise one failing (CI) or skipped test
 * carrying the missing tool's line.
 */
export function describeWith(tools: readonly Tool[], name: string, body: () => void): void {
  const line = missingTool(...tools);
  if (line === undefined) describe(name, body);
  else describe(name, () => testMissing(line));
}

/** `it(name, fn, timeout)` when every tool is present; otherwise the same failing or skipped test. */
export function itWith(tools: readonly Tool[], name: string, fn: () => unknown, timeout?: number): void {
  const line = missingTool(...tools);
  if (line === undefined) it(name, fn, timeout);
  else testMissing(line, name);
}
