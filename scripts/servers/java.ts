// Configuration shared by the JVM services (Kafka, Pulsar).

import { writeFileSync } from 'node:fs';

export function log4j2Config(path: string, quiet: Record<string, string>): void {
  const lines = [
    'status = warn',
    'appender.out.type = Console',
    'appender.out.name = out',
    'appender.out.layout.type = PatternLayout',
    'appender.out.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = info',
    'rootLogger.appenderRef.out.ref = out',
  ];
  let i = 0;
  for (const [logger, level] of Object.entries(quiet)) {
    lines.push(`logger.q${i}.name = ${logger}`, `logger.q${i}.level = ${level}`);
    i += 1;
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}
