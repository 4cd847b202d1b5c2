/**
 * One run at a time: `run` waits for the one in progress, then starts its own. For catch-ups
 * where a caller that waited usually finds the work done (it reads from where the last stopped).
 */
export class Exclusive {
  #busy: Promise<void> | undefined;

  async run(fn: () => Promise<void>): Promise<void> {
    while (this.#busy) await this.#busy.catch(() => undefined);
    const run = fn();
    this.#busy = run;
    try {
      await run;
    } finally {
      this.#busy = undefined;
    }
  }
}
