// The dead-letter topic and the message an event that cannot be projected becomes.
import type { MessageToProduce } from '@platformatic/kafka';
import { EventfoldError, errorMessage, InvalidArgumentError } from '../../../core/errors.ts';
import type { LogRecord } from '../log.ts';
import type { KafkaNames } from '../topics.ts';

/** Where it failed: decoding the event, or its handler (after the retries). */
export type DeadLetterStage = 'decode' | 'handle';

/** `<prefix>._projector.<group>.dlq`, refused when over Kafka's topic name limit. */
export function deadLetterTopicName(names: KafkaNames, group: string): string {
  const topic = names.projectorDeadLetters(group);
  if (topic.length > 249) {
    throw new InvalidArgumentError(`dead-letter topic ${topic} is longer than Kafka's 249 characters: use a shorter prefix or group`);
  }
  return topic;
}

export interface DeadLetter {
  /** The dead-letter topic. */
  readonly topic: string;
  /** Store partition of the record: also its partition in the dead-letter topic. */
  readonly partition: number;
  /** Events topic and Kafka partition the record was read from. */
  readonly source: readonly [topic: string, partition: number];
  readonly stage: DeadLetterStage;
  readonly error: unknown;
  readonly attempts: number;
}

/** The original key, value and headers, plus `ef-dlq-*` headers saying where and why it failed. */
export function deadLetterMessage(record: LogRecord, letter: DeadLetter): MessageToProduce {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of record.headers) if (name) headers.set(name, value ?? Buffer.alloc(0));
  const put = (name: string, value: string): void => {
    headers.set(Buffer.from(name), Buffer.from(value, 'utf8'));
  };
  const { error } = letter;
  put('ef-dlq-stage', letter.stage);
  put('ef-dlq-error', errorMessage(error).slice(0, 16_384));
  put('ef-dlq-code', error instanceof EventfoldError ? error.code : error instanceof Error ? error.name : typeof error);
  const [topic, topicPartition] = letter.source;
  put('ef-dlq-topic', topic);
  put('ef-dlq-partition', String(topicPartition));
  put('ef-dlq-offset', String(record.offset));
  put('ef-dlq-attempts', String(letter.attempts));
  put('ef-dlq-time', String(Date.now()));
  return {
    topic: letter.topic,
    partition: letter.partition,
    ...(record.key ? { key: record.key } : {}),
    ...(record.value ? { value: record.value } : {}),
    headers,
    timestamp: record.timestamp,
  };
}
