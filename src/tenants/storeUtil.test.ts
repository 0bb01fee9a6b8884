import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { MAX_PATCH_DEPTH, mergePatch } from './storeUtil.js';

describe('mergePatch', () => {
  it('merges objects, removes fields set to null, replaces everything else', () => {
    const target = { a: 1, b: { c: 2, d: 3 }, list: [1, 2] };
    expect(mergePatch(target, { b: { c: null, e: 4 }, list: [3], f: { g: null } })).toEqual({ a: 1, b: { d: 3, e: 4 }, list: [3], f: {} });
    expect(target).toEqual({ a: 1, b: { c: 2, d: 3 }, list: [1, 2] });
  });

  it('refuses a patch nested past MAX_PATCH_DEPTH with CG_TENANT_INVALID instead of overflowing the stack', () => {
    // Found by the fuzzer: a PATCH body 100 000 objects deep recursed until RangeError (HTTP 500).
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    let thrown: unknown;
    try {
      mergePatch({}, { greeting: deep });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CallgateError);
    expect((thrown as CallgateError).code).toBe('CG_TENANT_INVALID');
    // Nesting up to the limit still merges.
    let ok: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < MAX_PATCH_DEPTH; i++) ok = { a: ok };
    expect(() => mergePatch({}, ok)).not.toThrow();
  });
});
