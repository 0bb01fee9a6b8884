/**
 * The keys that appear more than once in one object of a JSON text (JSON.parse keeps the last silently,
 * so a log line with two `callId`s parses fine and hides the first). Paths like `callId` or `err.code`.
 */
export function duplicateKeys(json: string): string[] {
  const dups: string[] = [];
  const stack: { keys: Set<string>; path: string; isObject: boolean; lastKey: string }[] = [];
  let i = 0;
  const readString = (): string => {
    let out = '';
    i++; // opening quote
    while (i < json.length && json[i] !== '"') {
      if (json[i] === '\\') {
        out += json.slice(i, i + 2);
        i += 2;
      } else out += json[i++];
    }
    i++; // closing quote
    return out;
  };
  while (i < json.length) {
    const c = json[i]!;
    const top = stack[stack.length - 1];
    if (c === '{' || c === '[') {
      const path = top ? (top.isObject ? (top.path ? `${top.path}.${top.lastKey}` : top.lastKey) : top.path) : '';
      stack.push({ keys: new Set(), path, isObject: c === '{', lastKey: '' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === '"') {
      const s = readString();
      let j = i;
      while (json[j] === ' ') j++;
      if (top?.isObject && json[j] === ':') {
        if (top.keys.has(s)) dups.push(top.path ? `${top.path}.${s}` : s);
        top.keys.add(s);
        top.lastKey = s;
      }
    } else i++;
  }
  return dups;
}
