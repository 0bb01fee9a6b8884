import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The shape of src/ as docs/architecture.md draws it, checked on every run from the code's own
 * imports (read with the TypeScript compiler's import scanner): no import circle, and every import
 * runs down the layers. Production modules only: tests and `testing/` folders may reach anywhere.
 */
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * Lowest first; a folder may import its own folder and any folder of a lower layer, never a higher
 * one. Folders on one layer may not import each other (the two SIP-free and SIP doors stay apart).
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'log.ts', 'util'],
  ['media'],
  ['providers'],
  ['agent'],
  ['tenants'],
  ['webhooks'],
  ['tools'],
  ['call'],
  ['rooms'],
  ['sip', 'webrtc'],
  ['http'],
  ['app'],
  ['cli'],
];

function productionFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing') out.push(...productionFiles(path));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** src-relative path → the src-relative paths it imports (relative specifiers only: packages are not ours). */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(SRC, normalize(join(dirname(file), spec.replace(/\.js$/, '.ts')))));
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

/** Every import circle, each as its files in order (found once, from its smallest file name). */
function circles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const visit = (start: string, at: string, path: string[], seen: Set<string>): void => {
    for (const next of graph.get(at) ?? []) {
      if (next === start) {
        const cycle = [...path];
        const key = [...cycle].sort().join(' ');
        if (cycle.every((f) => f >= start) && !found.has(key)) found.set(key, cycle);
      } else if (!seen.has(next) && next > start && graph.has(next)) {
        seen.add(next);
        visit(start, next, [...path, next], seen);
        seen.delete(next);
      }
    }
  };
  for (const file of [...graph.keys()].sort()) visit(file, file, [file], new Set([file]));
  return [...found.values()];
}

const layerOf = (file: string): { folder: string; layer: number } => {
  const folder = file.includes('/') ? file.slice(0, file.indexOf('/')) : file;
  const layer = LAYERS.findIndex((l) => l.includes(folder));
  return { folder, layer };
};

/** Imports that run up a layer or sideways between two folders of one layer, as "from → to". */
function upward(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, targets] of graph) {
    const a = layerOf(from);
    for (const to of targets) {
      const b = layerOf(to);
      if (a.folder !== b.folder && b.layer >= a.layer) bad.push(`${from} → ${to}`);
    }
  }
  return bad;
}

describe('the shape of src/', () => {
  const graph = importGraph(productionFiles(SRC));

  it('knows where every production folder sits', () => {
    const unplaced = [...new Set([...graph.keys()].map((f) => layerOf(f)).filter((l) => l.layer < 0).map((l) => l.folder))];
    expect(unplaced, 'add new folders to LAYERS').toEqual([]);
    expect(graph.size).toBeGreaterThan(100);
  });

  it('has no import circle', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('imports only down the layers, and its two doors never import each other', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('the checks see what they are for: a circle and an upward import made on purpose are found', () => {
    const planted = new Map(graph);
    planted.set('media/AudioLeg.ts', [...(graph.get('media/AudioLeg.ts') ?? []), 'agent/AgentSession.ts']);
    planted.set('agent/AgentSession.ts', [...(graph.get('agent/AgentSession.ts') ?? []), 'media/AudioLeg.ts']);
    expect(upward(planted)).toContain('media/AudioLeg.ts → agent/AgentSession.ts');
    expect(circles(planted).some((c) => c.includes('media/AudioLeg.ts') && c.includes('agent/AgentSession.ts'))).toBe(true);
  });
});
