// A TCP forwarder on 127.0.0.1 that counts the bytes a client sends to a
// server, with timestamps: the "wire" as a network team would measure it
// (TLS records and all), independent of ferry's own counters.

import net from 'node:net';

export interface WireMeter {
  port: number;
  /** Every chunk that went client → server: [Date.now(), bytes]. */
  samples: [number, number][];
  bytesBetween(a: number, b: number): number;
  close(): Promise<void>;
}

export async function startWireMeter(target: { host: string; port: number }): Promise<WireMeter> {
  const samples: [number, number][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (b: Buffer) => samples.push([Date.now(), b.length]));
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    samples,
    bytesBetween: (a, b) => samples.reduce((s, [t, n]) => (t >= a && t < b ? s + n : s), 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
