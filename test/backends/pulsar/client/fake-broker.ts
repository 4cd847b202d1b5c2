// A fake broker on loopback for what the standalone cannot be made to do: record CONNECT
// (credentials), stay silent to PING, or take a producer's SENDs and never answer them.
import net from 'node:net';
import { create } from '@bufbuild/protobuf';
import { command, decodeFrame, encodeCommand, FrameReader } from '../../../../src/backends/pulsar/client/frame.ts';
import {
  BaseCommand_Type as T,
  type CommandConnect,
  CommandConnectedSchema,
  CommandErrorSchema,
  CommandLookupTopicResponse_LookupType,
  CommandLookupTopicResponseSchema,
  CommandProducerSuccessSchema,
  CommandSuccessSchema,
  ServerError,
} from '../../../../src/backends/pulsar/client/proto/PulsarApi_pb.ts';

export interface FakeBroker {
  readonly url: string;
  readonly connects: CommandConnect[];
  /** PINGs and SENDs received. */
  readonly counts: { pings: number; sends: number };
  close(): void;
}

/** `connected`: CONNECTED, then lookups, producers and closes answered, SENDs and PINGs not. `error`: refuses CONNECT. */
export async function fakeBroker(mode: 'connected' | 'error'): Promise<FakeBroker> {
  const connects: CommandConnect[] = [];
  const counts = { pings: 0, sends: 0 };
  const sockets = new Set<net.Socket>();
  let url = '';
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const reader = new FrameReader();
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      for (const raw of reader.push(chunk)) {
        const cmd = decodeFrame(raw).command;
        switch (cmd.type) {
          case T.PING:
            counts.pings++;
            break;
          case T.SEND:
            counts.sends++;
            break;
          case T.CONNECT:
            connects.push(cmd.connect!);
            socket.write(
              mode === 'connected'
                ? encodeCommand(
                    command(T.CONNECTED, 'connected', create(CommandConnectedSchema, { serverVersion: 'fake', protocolVersion: 20 })),
                  )
                : encodeCommand(
                    command(
                      T.ERROR,
                      'error',
                      create(CommandErrorSchema, { requestId: 0n, error: ServerError.AuthenticationError, message: 'bad token' }),
                    ),
                  ),
            );
            break;
          case T.LOOKUP: {
            const body = create(CommandLookupTopicResponseSchema, {
              requestId: cmd.lookupTopic!.requestId,
              response: CommandLookupTopicResponse_LookupType.Connect,
              brokerServiceUrl: url,
            });
            socket.write(encodeCommand(command(T.LOOKUP_RESPONSE, 'lookupTopicResponse', body)));
            break;
          }
          case T.PRODUCER: {
            const p = cmd.producer!;
            const body = create(CommandProducerSuccessSchema, { requestId: p.requestId, producerName: p.producerName || 'fake-producer' });
            socket.write(encodeCommand(command(T.PRODUCER_SUCCESS, 'producerSuccess', body)));
            break;
          }
          case T.CLOSE_PRODUCER:
            socket.write(
              encodeCommand(command(T.SUCCESS, 'success', create(CommandSuccessSchema, { requestId: cmd.closeProducer!.requestId }))),
            );
            break;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  url = `pulsar://127.0.0.1:${port}`;
  return {
    url,
    connects,
    counts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
