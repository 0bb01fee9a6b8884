/**
 * The call's clocks that are not about audio: the caller's silence after the agent spoke (no-input)
 * and the call's time limit. Each fires its callback once; re-arming no-input restarts its count.
 */
export class CallTimers {
  private noInputTimer: NodeJS.Timeout | undefined;
  private timeLimitTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly onNoInput: () => void,
    private readonly onTimeLimit: () => void,
  ) {}

  startTimeLimit(ms: number): void {
    if (this.closed) return;
    if (this.timeLimitTimer) clearTimeout(this.timeLimitTimer);
    this.timeLimitTimer = setTimeout(() => {
      this.timeLimitTimer = undefined;
      this.onTimeLimit();
    }, ms);
  }

  /** The caller has `ms` to say something (or press a key) before `onNoInput`. */
  armNoInput(ms: number): void {
    this.clearNoInput();
    if (this.closed) return;
    this.noInputTimer = setTimeout(() => {
      this.noInputTimer = undefined;
      this.onNoInput();
    }, ms);
  }

  /** The caller (or the agent) is talking: no-input does not count. */
  clearNoInput(): void {
    if (this.noInputTimer) clearTimeout(this.noInputTimer);
    this.noInputTimer = undefined;
  }

  close(): void {
    this.closed = true;
    this.clearNoInput();
    if (this.timeLimitTimer) clearTimeout(this.timeLimitTimer);
    this.timeLimitTimer = undefined;
  }
}
