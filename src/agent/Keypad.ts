/**
 * Keypad entry: digits collect until '#' or a pause longer than the inter-digit time, then go out as
 * one entry (IVR convention: "enter your number, then hash").
 */
export class Keypad {
  private digits = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly interDigitMs: number,
    /** A whole entry (never empty; '#' not included). */
    private readonly onEntry: (digits: string) => void,
  ) {}

  press(digit: string): void {
    this.stopTimer();
    if (digit === '#') return this.submit();
    this.digits += digit;
    this.timer = setTimeout(() => this.submit(), this.interDigitMs);
  }

  /** Drops the entry under way. */
  close(): void {
    this.stopTimer();
    this.digits = '';
  }

  private submit(): void {
    this.timer = undefined;
    const digits = this.digits;
    this.digits = '';
    if (digits) this.onEntry(digits);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
