// Where the CLI's output decides colour and width: only on a terminal, never with NO_COLOR, and
// the progress line only on a terminal's stderr. (The bin's own runs are pipes: no colour.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOutput, fit } from '../../src/cli/output.ts';
import { Progress } from '../../src/cli/progress.ts';

function sink(tty: boolean, columns = 60) {
  const chunks: string[] = [];
  const stream = {
    isTTY: tty,
    columns,
    write: (text: string) => {
      chunks.push(text);
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join('') };
}

const ESC = '\u001b[';

describe('CLI output', () => {
  it('colours table headers on a terminal, with its width; not in a pipe, nor with NO_COLOR or --no-color', () => {
    const tty = sink(true);
    const out = createOutput({ stdout: tty.stream, stderr: sink(false).stream }, { json: false, colour: undefined, env: {} });
    out.table([{ header: 'A' }, { header: 'B', align: 'right' }], [['x', '1']]);
    assert.ok(out.colour);
    assert.equal(out.width, 60);
    assert.ok(tty.text().includes(`${ESC}1m`), 'bold header');

    for (const [stdout, env, colour] of [
      [sink(false), {}, undefined],
      [sink(true), { NO_COLOR: '1' }, undefined],
      [sink(true), { TERM: 'dumb' }, undefined],
      [sink(true), {}, false],
    ] as const) {
      const o = createOutput({ stdout: stdout.stream, stderr: sink(false).stream }, { json: false, colour, env });
      o.table([{ header: 'A' }], [['x']]);
      assert.equal(o.colour, false);
      assert.ok(!stdout.text().includes(ESC));
      assert.equal(o.style('red', 'plain'), 'plain');
    }
  });

  it('aligns columns (right-aligned numbers, the last column unpadded) and cuts text to a width', () => {
    const pipe = sink(false);
    const out = createOutput({ stdout: pipe.stream, stderr: sink(false).stream }, { json: false, colour: false, env: {} });
    out.table(
      [{ header: 'NAME' }, { header: 'N', align: 'right' }, { header: 'NOTE' }],
      [
        ['a', '1', 'x'],
        ['long-name', '100', 'y'],
      ],
    );
    assert.equal(pipe.text(), 'NAME         N  NOTE\na            1  x\nlong-name  100  y\n');
    assert.equal(fit('abcdef', 4), 'abc…');
    assert.equal(fit('abcdef', undefined), 'abcdef');
  });

  it('writes bigints in JSON lines as strings', () => {
    const pipe = sink(false);
    createOutput({ stdout: pipe.stream, stderr: sink(false).stream }, { json: true, colour: false, env: {} }).jsonLine({
      offset: 2n ** 64n,
    });
    assert.equal(pipe.text(), '{"offset":"18446744073709551616"}\n');
  });

  it('the progress line is drawn only when enabled (a terminal), and erased when done', () => {
    const on = sink(true);
    const progress = new Progress(on.stream, true);
    progress.update(() => '10 events');
    progress.done();
    assert.equal(on.text(), `\r${ESC}2K10 events\r${ESC}2K`);
    const off = sink(false);
    const quiet = new Progress(off.stream, false);
    quiet.update(() => '10 events');
    quiet.done();
    assert.equal(off.text(), '');
  });
});
