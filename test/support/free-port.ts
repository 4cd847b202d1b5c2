import { type AddressInfo, createServer } from 'node:net';

/** A port nobody listens on now (a private broker's ports are picked per run, so two runs of a file never collide). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
