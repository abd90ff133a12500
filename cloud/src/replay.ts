/**
 * Replay protection for signed edge->cloud calls: the cloud remembers every signature it
 * accepted until that signature's timestamp leaves the window, and refuses to accept one twice.
 * Together with the timestamp window (hmac.ts) a captured call is worthless: inside the window it
 * is a replay, outside it is stale.
 *
 * Per instance: the cache lives in this process's memory. Behind a load balancer a replay that
 * lands on another instance inside the window is not caught; use sticky routing by nonce, a
 * shared store, or a shorter window where that matters (docs/reliability.md).
 *
 * Bounded: at most `maxEntries` signatures (about 120 bytes each). Only calls whose signature
 * verified are recorded, so filling it takes the secret; when it is full of live entries new calls
 * are refused ("full", a 503) rather than evicting live ones, which would reopen the replay hole.
 */
export type ReplayVerdict = "fresh" | "replayed" | "full";

export class ReplayGuard {
  /** signature -> the second after which its timestamp is outside the window */
  private readonly accepted = new Map<string, number>();
  private lastSweepS = -Infinity;

  constructor(
    private readonly windowS: number,
    readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.accepted.size;
  }

  /** Whether `signature` was accepted within the window; records nothing (checked before the body is read). */
  seen(signature: string, nowS: number): boolean {
    const until = this.accepted.get(signature);
    return until !== undefined && until >= nowS;
  }

  /** Records `signature` (timestamp `tsS`) and says whether it was new. Call after verifying it. */
  check(signature: string, tsS: number, nowS: number): ReplayVerdict {
    this.expire(nowS, false);
    if (this.accepted.has(signature)) return "replayed";
    if (this.accepted.size >= this.maxEntries) {
      // entries arrive roughly in timestamp order, so the cheap sweep above usually suffices;
      // a full pass at most once a second catches the out-of-order rest
      this.expire(nowS, true);
      if (this.accepted.size >= this.maxEntries) return "full";
    }
    this.accepted.set(signature, tsS + this.windowS);
    return "fresh";
  }

  private expire(nowS: number, full: boolean): void {
    if (full) {
      if (nowS - this.lastSweepS < 1) return;
      this.lastSweepS = nowS;
    }
    for (const [sig, until] of this.accepted) {
      if (until < nowS) this.accepted.delete(sig);
      else if (!full) break; // Map iterates in insertion order: stop at the first live entry
    }
  }
}
