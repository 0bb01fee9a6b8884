import { describe, expect, it } from 'vitest';
import { duplicateKeys } from './duplicateKeys.js';

describe('duplicateKeys', () => {
  it('finds a key written twice in one object, at any depth, and nothing in clean JSON', () => {
    expect(duplicateKeys('{"level":30,"callId":"a","tenant":"t","callId":"a","msg":"x"}')).toEqual(['callId']);
    expect(duplicateKeys('{"err":{"code":1,"code":2},"list":[{"a":1},{"a":2}]}')).toEqual(['err.code']);
    expect(duplicateKeys('{"a":"{\\"a\\":1,\\"a\\":2}","b":[1,2],"c":{"a":1}}')).toEqual([]);
  });
});
