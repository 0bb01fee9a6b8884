/**
 * Drops keys whose value is undefined, so `{ ...defaults, ...stripUndefined(given) }` keeps a default
 * where the caller passed `undefined` explicitly (spread alone would overwrite it).
 */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
