import { Command } from 'commander';
import { errorMessage } from '../../core/errors.ts';
import { type CommandFactory, EXIT, runCommand } from '../context.ts';
import { Decoder } from '../events-module.ts';
import { count, formatPosition, positiveInt } from '../format.ts';

interface CheckOptions {
  readonly failures: number;
}

interface TypeReport {
  readonly type: string;
  readonly schemaVersion: number;
  ok: number;
  failed: number;
  readonly firstFailures: { streamId: string; version: number; position: string; error: string }[];
}

/**
 * `eventfold schema check --events ./events.ts`: reads every stored event and decodes it as the
 * app would today: the codec, the upcasters from its stored schema version, and the schema's
 * validation (on every event, not only upcast ones: an old event a schema has since tightened
 * against fails here, before a replay meets it). Counts per stored type and schema version,
 * the first failures of each; exit 1 on any failure.
 */
export const schemaCommand: CommandFactory = (io, done) => {
  const schema = new Command('schema').description('check stored events against your event definitions');
  schema.addCommand(
    new Command('check')
      .description('every stored type and schema version decodes, upcasts and validates under --events (exit 1 if not)')
      .option('--failures <n>', 'failures to show per type and version', positiveInt, 3)
      .action(async (options: CheckOptions, command: Command) =>
        done(
          await runCommand(command, io, async (ctx) => {
            const definitions = await ctx.requireDefinitions('schema check');
            const decoder = new Decoder(definitions, { validate: true });
            const inspector = await ctx.inspector();
            const progress = ctx.progress();
            const reports = new Map<string, TypeReport>();
            let scanned = 0;
            for (let partition = 0; partition < inspector.partitions; partition++) {
              for await (const stored of inspector.scanPartition(partition, undefined)) {
                scanned++;
                const key = `${stored.type}\u0000${stored.schemaVersion}`;
                let report = reports.get(key);
                if (!report) {
                  report = { type: stored.type, schemaVersion: stored.schemaVersion, ok: 0, failed: 0, firstFailures: [] };
                  reports.set(key, report);
                }
                try {
                  decoder.strict(stored);
                  report.ok++;
                } catch (error) {
                  report.failed++;
                  if (report.firstFailures.length < options.failures) {
                    report.firstFailures.push({
                      streamId: stored.streamId,
                      version: stored.version,
                      position: formatPosition(stored.position),
                      error: errorMessage(error),
                    });
                  }
                }
                progress.update(() => `schema check: ${count(scanned, 'event')} (partition ${partition + 1} of ${inspector.partitions})…`);
              }
            }
            progress.done();
            const list = [...reports.values()].sort((a, b) =>
              a.type < b.type ? -1 : a.type > b.type ? 1 : a.schemaVersion - b.schemaVersion,
            );
            const failed = list.reduce((n, r) => n + r.failed, 0);
            const { out } = ctx;
            if (out.json) {
              for (const r of list) out.jsonLine(r);
              out.jsonLine({ events: scanned, failed });
            } else {
              out.table(
                [
                  { header: 'TYPE' },
                  { header: 'SCHEMA', align: 'right' },
                  { header: 'OK', align: 'right' },
                  { header: 'FAILED', align: 'right' },
                ],
                list.map((r) => [r.type, `v${r.schemaVersion}`, String(r.ok), r.failed > 0 ? out.style('red', String(r.failed)) : '0']),
              );
              for (const r of list.filter((r) => r.failed > 0)) {
                out.line('');
                out.line(out.style('bold', `${r.type} v${r.schemaVersion}: ${count(r.failed, 'failure')}, first:`));
                for (const f of r.firstFailures) out.line(`  ${f.streamId} v${f.version} at ${f.position}: ${f.error}`);
              }
              out.line('');
              const summary = `${count(scanned, 'event')} checked against ${definitions.file}: ${failed === 0 ? 'all decode' : `${failed} failed`}`;
              out.line(failed === 0 ? out.style('green', summary) : out.style('red', summary));
            }
            return failed === 0 ? EXIT.ok : EXIT.failure;
          }),
        ),
      ),
  );
  return schema;
};
