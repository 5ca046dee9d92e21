/**
 * How many wrong login tokens errand listens to: a budget per client address and one for
 * all addresses together, each over a sliding window. Once a budget is spent, logins it
 * covers are refused without looking at the token, the right one too, until the oldest
 * failure leaves the window: were a right token let through, an attacker would learn from
 * it and the budget would bound nothing. Sessions already open are not affected.
 */
export interface LoginRefusal {
  /** Which budget is spent: this address's, or everyone's. */
  scope: 'address' | 'overall';
  /** Seconds until the budget has room again (for Retry-After). */
  retryAfterSeconds: number;
}

export class LoginBudget {
  readonly #o: { perAddress: number; overall: number; windowMs: number };
  readonly #now: () => number;
  /** Times of failures in the window, oldest first; every one is also in #all. */
  readonly #byAddress = new Map<string, number[]>();
  readonly #all: number[] = [];

  constructor(
    o: { perAddress: number; overall: number; windowMs: number },
    now: () => number = Date.now,
  ) {
    this.#o = o;
    this.#now = now;
  }

  /** Why a login from `address` is refused now; undefined when its token may be checked. */
  refusal(address: string): LoginRefusal | undefined {
    const now = this.#now();
    this.#forget(now);
    const wait = (oldest: number) =>
      Math.max(1, Math.ceil((oldest + this.#o.windowMs - now) / 1000));
    if (this.#all.length >= this.#o.overall) {
      return { scope: 'overall', retryAfterSeconds: wait(this.#all[0]!) };
    }
    const mine = this.#byAddress.get(address);
    if (mine && mine.length >= this.#o.perAddress) {
      return { scope: 'address', retryAfterSeconds: wait(mine[0]!) };
    }
    return undefined;
  }

  /** Counts a wrong token from `address`; returns the refusal it brings about, if any. */
  fail(address: string): LoginRefusal | undefined {
    const now = this.#now();
    this.#all.push(now);
    const mine = this.#byAddress.get(address);
    if (mine) mine.push(now);
    else this.#byAddress.set(address, [now]);
    return this.refusal(address);
  }

  // Only failures in the window are kept; refused attempts are not counted, so there are
  // never more than `overall` of them, nor more addresses.
  #forget(now: number): void {
    const since = now - this.#o.windowMs;
    while (this.#all.length && this.#all[0]! <= since) this.#all.shift();
    for (const [address, times] of this.#byAddress) {
      while (times.length && times[0]! <= since) times.shift();
      if (times.length === 0) this.#byAddress.delete(address);
    }
  }
}
