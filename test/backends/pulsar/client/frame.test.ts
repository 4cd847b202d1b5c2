// Framing and checksums without a broker: CRC-32C against RFC 3720's vectors, frames that
// round-trip, a stream cut at every byte, corrupt input refused, and batch entries split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { entryMessages } from '../../../../src/backends/pulsar/client/batch.ts';
import { crc32c } from '../../../../src/backends/pulsar/client/crc32c.ts';
import { ProtocolError } from '../../../../src/backends/pulsar/client/errors.ts';
import {
  command,
  commandBody,
  decodeFrame,
  encodeCommand,
  encodePayloadCommand,
  FrameReader,
} from '../../../../src/backends/pulsar/client/frame.ts';
import {
  BaseCommand_Type as T,
  CommandLookupTopicSchema,
  CommandSendSchema,
  KeyValueSchema,
  MessageMetadataSchema,
  SingleMessageMetadataSchema,
} from '../../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';

test('crc32c matches the RFC 3720 (iSCSI) test vectors and continues across chunks', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c(inc), 0x46dd794e);
  const dec = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
  assert.equal(crc32c(dec), 0x113fdb5c);
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  for (const cut of [0, 1, 7, 8, 9, 500, 999]) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data), `cut at ${cut}`);
  }
});

test('a simple command round-trips and its body is found by the type number', () => {
  const body = create(CommandLookupTopicSchema, { topic: 'persistent://a/b/c', requestId: 42n, authoritative: true });
  const frame = encodeCommand(command(T.LOOKUP, 'lookupTopic', body));
  assert.equal(frame.readUInt32BE(0), frame.length - 4);
  const decoded = decodeFrame(frame.subarray(4));
  assert.equal(decoded.command.type, T.LOOKUP);
  assert.equal(decoded.command.lookupTopic?.topic, 'persistent://a/b/c');
  assert.equal(commandBody(decoded.command)?.requestId, 42n);
  assert.equal(decoded.payload, undefined);
});

test('a payload command carries metadata, payload and a checksum that detects corruption', () => {
  const metadata = create(MessageMetadataSchema, { producerName: 'p', sequenceId: 7n, publishTime: 1000n });
  const payload = Buffer.from('hello pulsar');
  const frame = encodePayloadCommand(
    command(T.SEND, 'send', create(CommandSendSchema, { producerId: 3n, sequenceId: 7n })),
    metadata,
    payload,
  );
  const ok = decodeFrame(frame.subarray(4));
  assert.equal(ok.command.send?.sequenceId, 7n);
  assert.equal(ok.payload?.metadata.producerName, 'p');
  assert.equal(Buffer.from(ok.payload!.payload).toString(), 'hello pulsar');
  assert.equal(ok.payload?.checksumValid, true);
  const bad = Buffer.from(frame);
  bad[bad.length - 1]! ^= 1;
  assert.equal(decodeFrame(bad.subarray(4)).payload?.checksumValid, false);
});

test('FrameReader reassembles frames from a stream cut at every byte', () => {
  const frames = [1, 2, 3].map((n) =>
    encodePayloadCommand(
      command(T.SEND, 'send', create(CommandSendSchema, { producerId: 1n, sequenceId: BigInt(n) })),
      create(MessageMetadataSchema, { producerName: 'p', sequenceId: BigInt(n), publishTime: 1n }),
      Buffer.alloc(n * 100, n),
    ),
  );
  const stream = Buffer.concat(frames);
  for (let cut = 1; cut < stream.length; cut += 37) {
    const reader = new FrameReader();
    const out = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    assert.deepEqual(
      out.map((f) => decodeFrame(f).command.send?.sequenceId),
      [1n, 2n, 3n],
      `cut at ${cut}`,
    );
  }
  const byteByByte = new FrameReader();
  const got: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...byteByByte.push(stream.subarray(i, i + 1)));
  assert.equal(got.length, 3);
});

test('FrameReader refuses a frame over its size limit instead of buffering it', () => {
  const reader = new FrameReader(1024);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(4096);
  assert.throws(() => reader.push(head), ProtocolError);
});

test('a batch entry splits into its messages with batch indexes, keys and properties', () => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    const body = Buffer.from(`m${i}`);
    const single = toBinary(
      SingleMessageMetadataSchema,
      create(SingleMessageMetadataSchema, {
        payloadSize: body.length,
        partitionKey: `k${i}`,
        properties: [create(KeyValueSchema, { key: 'i', value: String(i) })],
        sequenceId: BigInt(10 + i),
      }),
    );
    const size = Buffer.alloc(4);
    size.writeUInt32BE(single.length);
    parts.push(size, Buffer.from(single), body);
  }
  const meta = create(MessageMetadataSchema, { producerName: 'p', sequenceId: 10n, publishTime: 1n, numMessagesInBatch: 3 });
  const messages = entryMessages(meta, Buffer.concat(parts));
  assert.deepEqual(
    messages.map((m) => [m.batchIndex, Buffer.from(m.payload).toString(), m.key, m.properties['i'], m.sequenceId]),
    [
      [0, 'm0', 'k0', '0', 10n],
      [1, 'm1', 'k1', '1', 11n],
      [2, 'm2', 'k2', '2', 12n],
    ],
  );
  const single = entryMessages(create(MessageMetadataSchema, { producerName: 'p', sequenceId: 5n, publishTime: 1n }), Buffer.from('x'));
  assert.deepEqual(
    single.map((m) => [m.batchIndex, m.key, m.sequenceId]),
    [[-1, undefined, 5n]],
  );
});
