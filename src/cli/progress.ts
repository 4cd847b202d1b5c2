/**
 * One status line on stderr for a long scan ("schema check: 120 000 events…"), redrawn at most
 * every 200 ms and erased when done. Off unless stderr is a terminal, so pipes, logs and tests
 * see only the result; a progress library would add a dependency for this one line.
 */
export class Progress {
  readonly #stream: NodeJS.WritableStream;
  readonly #enabled: boolean;
  #last = Number.NEGATIVE_INFINITY;
  #shown = false;

  constructor(stream: NodeJS.WritableStream, enabled: boolean) {
    this.#stream = stream;
    this.#enabled = enabled;
  }

  update(text: () => string): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 200) return;
    this.#last = now;
    this.#shown = true;
    this.#stream.write(`\r\x1b[2K${text()}`);
  }

  done(): void {
    if (this.#shown) this.#stream.write('\r\x1b[2K');
    this.#shown = false;
  }
}
