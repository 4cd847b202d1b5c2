// Reconnect delays: doubling from `initialMs` up to `maxMs`, each with ±20 % jitter so that
// the producers and consumers of a restarted broker do not come back in lockstep.

export class Backoff {
  private next: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  constructor(initialMs = 100, maxMs = 30_000) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.next = initialMs;
  }
  delay(): number {
    const d = this.next;
    this.next = Math.min(this.maxMs, this.next * 2);
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }
  reset(): void {
    this.next = this.initialMs;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
