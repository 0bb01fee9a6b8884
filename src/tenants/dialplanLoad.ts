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
  /** Tenants whose caches must be dropped everywhere. */
  readonly tenantIds: readonly string[];
}

/**
 * Writes checked dialplans into Redis. Upserts what the files declare, in dependency order (trunks,
 * tenants, call URLs, numbers), so loading the same files twice leaves the same state; it never deletes
 * what the files do not mention, and leaves alone what only the API sets (provider keys, use counts).
 * Call `checkDialplans` first: a set with any problem must load nothing.
 */
export async function loadDialplans(dialplans: readonly CheckedDialplan[], stores: DialplanStores): Promise<LoadSummary> {
  let created = 0;
  let updated = 0;
  const upsert = async (exists: () => Promise<unknown>, create: () => Promise<unknown>, update: () => Promise<unknown>, missing: ErrorCode): Promise<void> => {
    const found = await exists().then(
      () => true,
      (err: unknown) => {
        if (isCallgateError(err) && err.code === missing) return false;
        throw err;
      },
    );
    if (found) {
      await update();
      updated++;
    } else {
      await create();
      created++;
    }
  };
  const all = dialplans.map((d) => d.dialplan);
  for (const trunk of all.flatMap((d) => d.trunks)) {
    await upsert(
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
        () => stores.callUrls.get(slug),
        () => stores.callUrls.create({ ...url, tenantId: tenant.id }),
        () => stores.callUrls.update(slug, fields),
        'CG_CALL_URL_NOT_FOUND',
      );
    }
    for (const n of numbers) {
      await upsert(
        () => stores.numbers.getNumber(n.number),
        () => stores.numbers.createNumber({ ...n, tenantId: tenant.id }),
        () => stores.numbers.updateNumber(n.number, { tenantId: tenant.id, trunk: n.trunk ?? null }),
        'CG_NUMBER_NOT_FOUND',
      );
    }
  }
  return { created, updated, tenantIds };
}
