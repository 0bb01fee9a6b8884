import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';

/**
 * A cold transfer the SIP way (RFC 3515): REFER the caller's side to the target and follow the NOTIFY
 * `message/sipfrag` reports of its attempt. Only a final 2xx report means the caller reached the
 * target; a refused REFER, a failure report, or silence for `notifyTimeoutMs` (carriers that accept
 * REFER and never report exist) are told apart so the door can fall back to bridging.
 */
export type ReferOutcome = { readonly accepted: true } | { readonly accepted: false; readonly detail: string };

/** 30 s: the bound; a target that rings longer than that has not answered anyway. */
export const REFER_NOTIFY_TIMEOUT_MS = 30_000;

export async function refer(dialog: Srf.Dialog, referTo: string, referredBy: string, log: Logger, notifyTimeoutMs = REFER_NOTIFY_TIMEOUT_MS): Promise<ReferOutcome> {
  let settle: (o: ReferOutcome) => void = () => undefined;
  const reported = new Promise<ReferOutcome>((resolve) => (settle = resolve));
  // Out of a drachtio-srf event handler nothing may throw (answeredCall.ts: contained).
  const onNotify = (req: Srf.SrfRequest, res: Srf.SrfResponse): void => {
    try {
      res.send(200);
      const status = Number(/^SIP\/2\.0\s+(\d{3})/.exec(String(req.body ?? ''))?.[1]);
      if (!Number.isFinite(status) || status < 200) return;
      settle(status < 300 ? { accepted: true } : { accepted: false, detail: `the transfer failed on the caller's side (NOTIFY ${status})` });
    } catch (err) {
      log.error({ err: err instanceof Error ? err.stack : String(err) }, 'REFER NOTIFY failed');
    }
  };
  dialog.on('notify', onNotify);
  const gone = (): void => settle({ accepted: false, detail: 'the dialog ended before the transfer was reported' });
  dialog.once('destroy', gone);
  let timer: NodeJS.Timeout | undefined;
  try {
    let answer: { status: number };
    try {
      answer = (await dialog.request({ method: 'REFER', headers: { 'Refer-To': `<${referTo}>`, 'Referred-By': `<${referredBy}>` } } as never)) as { status: number };
    } catch (err) {
      return { accepted: false, detail: `REFER could not be sent (${String(err).slice(0, 120)})` };
    }
    if (answer.status >= 300) return { accepted: false, detail: `REFER answered ${answer.status}` };
    log.info({ status: answer.status }, 'REFER accepted; waiting for the NOTIFY reports');
    const timeout = new Promise<ReferOutcome>((resolve) => (timer = setTimeout(() => resolve({ accepted: false, detail: `no final NOTIFY within ${Math.round(notifyTimeoutMs / 1000)} s` }), notifyTimeoutMs)));
    return await Promise.race([reported, timeout]);
  } finally {
    clearTimeout(timer);
    dialog.off('notify', onNotify);
    dialog.off('destroy', gone);
  }
}
