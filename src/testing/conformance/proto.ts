// A protobuf message built at run time from a descriptor (no code generation step), and the
// event type whose payload is its proto3 JSON form.
import { create, createFileRegistry, type DescMessage } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { defineEvent } from '../../core/event-type.ts';
import { object, text } from './schema.ts';

const field = (name: string, jsonName: string, number: number, type: FieldDescriptorProto_Type) => ({
  name,
  jsonName,
  number,
  type,
  label: FieldDescriptorProto_Label.OPTIONAL,
});

const file = create(FileDescriptorProtoSchema, {
  name: 'eventfold/test/blob.proto',
  package: 'eventfold.test',
  syntax: 'proto3',
  messageType: [
    {
      name: 'Blob',
      field: [
        field('label', 'label', 1, FieldDescriptorProto_Type.STRING),
        field('size_bytes', 'sizeBytes', 2, FieldDescriptorProto_Type.UINT64),
        field('raw', 'raw', 3, FieldDescriptorProto_Type.BYTES),
      ],
    },
  ],
});

const message = createFileRegistry(file, () => undefined).getMessage('eventfold.test.Blob');
if (!message) throw new Error('descriptor for eventfold.test.Blob was not built');
export const BlobSchema: DescMessage = message;

export const BlobMessage = defineEvent({
  type: 'Blob',
  schema: object({ label: text(), sizeBytes: text({ pattern: /^\d+$/ }), raw: text({ pattern: /^[A-Za-z0-9+/]*={0,2}$/ }) }),
});
