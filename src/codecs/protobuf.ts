import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import type { Codec } from '../core/codec.ts';
import { InvalidArgumentError, InvalidEventError } from '../core/errors.ts';
import { jsonValueIssue } from '../core/payload-shape.ts';

/**
 * Protobuf payloads via @bufbuild/protobuf. Each event type maps to a message descriptor
 * (generated `...Schema` from protoc-gen-es, or one from a runtime registry). The payload the
 * rest of eventfold sees is the message's proto3 JSON form (camelCase fields, int64 as
 * strings), so the event's Standard Schema validates the same plain object for both codecs.
 */
export function protobufCodec(options: { readonly messages: Readonly<Record<string, DescMessage>> }): Codec {
  const messages = new Map(Object.entries(options.messages));
  const schemaFor = (type: string): DescMessage => {
    const schema = messages.get(type);
    if (!schema) throw new InvalidArgumentError(`protobuf codec has no message for event type "${type}"`);
    return schema;
  };
  return {
    name: 'protobuf',
    encode: ({ type, data }) => {
      const schema = schemaFor(type);
      // The input is the message's proto3 JSON form, so JSON's rules apply first; fromJson
      // then refuses unknown fields and wrong types.
      const issue = jsonValueIssue(data, 'data');
      if (issue) throw new InvalidEventError(type, [issue]);
      return toBinary(schema, fromJson(schema, data as JsonValue));
    },
    decode: ({ type, data }) => {
      const schema = schemaFor(type);
      return toJson(schema, fromBinary(schema, data), { alwaysEmitImplicit: true });
    },
  };
}
