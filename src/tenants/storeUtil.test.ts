import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from './redisClient.js';
import { MAX_PATCH_DEPTH, mergePatch, redisFailure } from './storeUtil.js';

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

describe('redisFailure: only an outage is CG_REDIS_UNAVAILABLE', () => {
  const prefix = testPrefix();
  let redis: Redis;
  beforeAll(async () => {
    redis = await connectRedis({ prefix });
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    if (redis.isOpen) await redis.close();
  });
  const failure = async (work: Promise<unknown>, invalidCode?: 'CG_CALL_RECORD_INVALID') => {
    try {
      await work;
    } catch (err) {
      return redisFailure(err, 'test', invalidCode ? { invalidCode } : {});
    }
    throw new Error('expected a failure');
  };

  it("maps Redis refusing an argument to the caller's 4xx code, not a retryable 503", async () => {
    const err = await failure(redis.sendCommand(['XREVRANGE', `${prefix}stream`, '(0-0', '-']), 'CG_CALL_RECORD_INVALID');
    expect(err).toMatchObject({ code: 'CG_CALL_RECORD_INVALID', status: 400, retryable: false });
    // Without a 4xx code to give, it is a bug (500), still not an outage.
    expect(await failure(redis.sendCommand(['XREVRANGE', `${prefix}stream`, '(0-0', '-']))).toMatchObject({ code: 'CG_INTERNAL', retryable: false });
  });

  it('maps WRONGTYPE and unreadable data to CG_INTERNAL', async () => {
    await redis.set(`${prefix}string`, 'x');
    expect(await failure(redis.sendCommand(['XREVRANGE', `${prefix}string`, '+', '-']), 'CG_CALL_RECORD_INVALID')).toMatchObject({ code: 'CG_INTERNAL', status: 500 });
    expect(redisFailure(new SyntaxError('Unexpected token'), 'test')).toMatchObject({ code: 'CG_INTERNAL' });
    const passed = new CallgateError('CG_TENANT_NOT_FOUND');
    expect(redisFailure(passed, 'test')).toBe(passed);
  });

  it('maps a lost connection to CG_REDIS_UNAVAILABLE (503, retryable)', async () => {
    const lost = await connectRedis({ prefix });
    lost.destroy();
    expect(await failure(lost.get('x'))).toMatchObject({ code: 'CG_REDIS_UNAVAILABLE', status: 503, retryable: true });
  });
});
