import { isCallgateError, type ErrorCode } from '../errors.js';
import type { CallUrlStore } from './CallUrlStore.js';
import type { CheckedDialplan } from './dialplan.js';
import type { NumberStore } from './NumberStore.js';
import type { TenantPatch, TenantStore } from './TenantStore.js';

export interface DialplanStores {
  readonly tenants: TenantStore;
  readonly callUrls: CallUrlStore;
  readonly numbers: NumberStore;
}

export interface LoadSummary {
  readonly created: number;
  readonly updated: number;
  /** What was made, as `tenant demo`, `call URL demo`, `number +15005550100`, `trunk local-test`. */
  readonly made: readonly string[];
  /** What was already there and, with `onlyMissing`, left as it was. */
  readonly kept: readonly string[];
  /** Tenants whose caches must be dropped everywhere. */
  readonly tenantIds: readonly string[];
}

export interface LoadOptions {
  /**
   * Create only what is absent and change nothing that exists: for the demo seeded at start, which
   * must never undo an operator's edits (or write over a tenant of the same name on a shared Redis).
   */
  readonly onlyMissing?: boolean;
}

/**
 * Writes checked dialplans into Redis. Upserts what the files declare, in dependency order (trunks,
 * tenants, call URLs, numbers), so loading the same files twice leaves the same state; it never deletes
 * what the files do not mention, and leaves alone what only the API sets (provider keys, use counts).
 * Call `checkDialplans` first: a set with any problem must load nothing.
 */
export async function loadDialplans(dialplans: readonly CheckedDialplan[], stores: DialplanStores, options: LoadOptions = {}): Promise<LoadSummary> {
  let updated = 0;
  const made: string[] = [];
  const kept: string[] = [];
  /** `what` names the object in the summary (`tenant demo`). */
  const upsert = async (what: string, exists: () => Promise<unknown>, create: () => Promise<unknown>, update: () => Promise<unknown>, missing: ErrorCode): Promise<void> => {
    const found = await exists().then(
      () => true,
      (err: unknown) => {
        if (isCallgateError(err) && err.code === missing) return false;
        throw err;
      },
    );
    if (found) {
      if (!options.onlyMissing) {
        await update();
        updated++;
      }
      kept.push(what);
    } else {
      await create();
      made.push(what);
    }
  };
  const all = dialplans.map((d) => d.dialplan);
  for (const trunk of all.flatMap((d) => d.trunks)) {
    await upsert(
      `trunk ${trunk.name}`,
      () => stores.numbers.getTrunk(trunk.name),
      () => stores.numbers.createTrunk(trunk),
      // The file declares the whole trunk: what it leaves out is removed, as for auth.
      () => stores.numbers.updateTrunk(trunk.name, { sourceCidrs: trunk.sourceCidrs, tenants: trunk.tenants ?? null, auth: trunk.auth ?? null, outbound: trunk.outbound ?? null }),
      'CG_TRUNK_NOT_FOUND',
    );
  }
  const tenantIds: string[] = [];
  for (const { callUrls, numbers, ...tenant } of all.flatMap((d) => d.tenants)) {
    tenantIds.push(tenant.id);
    await upsert(
      `tenant ${tenant.id}`,
      () => stores.tenants.get(tenant.id),
      () => stores.tenants.create(tenant),
      () => stores.tenants.update(tenant.id, tenant as TenantPatch),
      'CG_TENANT_NOT_FOUND',
    );
    for (const url of callUrls) {
      // checkDialplans requires a slug in dialplans: a random token would be new on every load.
      const slug = url.slug!;
      const { slug: _slug, ...fields } = url;
      await upsert(
        `call URL ${slug}`,
        () => stores.callUrls.get(slug),
        () => stores.callUrls.create({ ...url, tenantId: tenant.id }),
        () => stores.callUrls.update(slug, fields),
        'CG_CALL_URL_NOT_FOUND',
      );
    }
    for (const n of numbers) {
      await upsert(
        `number ${n.number}`,
        () => stores.numbers.getNumber(n.number),
        () => stores.numbers.createNumber({ ...n, tenantId: tenant.id }),
        () => stores.numbers.updateNumber(n.number, { tenantId: tenant.id, trunk: n.trunk ?? null }),
        'CG_NUMBER_NOT_FOUND',
      );
    }
  }
  return { created: made.length, updated, made, kept, tenantIds };
}
