import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closing the HTTP server without resetting keep-alive clients. Node's `server.close()` destroys
 * every idle keep-alive socket at once; a client that is sending its next request on one at that
 * moment gets a reset (20-24 of 32 concurrent clients did at SIGTERM). Instead, after the listener
 * closes (new connections are refused):
 * - a request arriving on an open connection is served with `connection: close` (Fastify adds it
 *   while closing, with `return503OnClosing: false`), and Node ends the socket after the response;
 * - an in-flight response that has not sent its headers yet gets `connection: close` too;
 * - a socket that stays idle for `idleGraceMs` (counted from the close, or from the end of the
 *   response it was busy with) is closed: its client had that long to send another request.
 */

// Busy keep-alive clients send their next request within milliseconds of a response, so 500 ms
// lets all of them receive `connection: close`; the shutdown waits at most this long for idle ones.
export const IDLE_GRACE_MS = 500;
const SWEEP_MS = 50;

/** Node's undocumented pointer to the response a socket is serving; null when the socket is idle. */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

export function installGracefulClose(server: Server, idleGraceMs = IDLE_GRACE_MS): void {
  const sockets = new Set<HttpSocket>();
  server.on('connection', (socket: HttpSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  let draining = false;
  // `server.close()` calls this on the instance (Node >= 19); replacing it defers the closing.
  server.closeIdleConnections = () => {
    if (draining) return;
    draining = true;
    const idleSince = new Map<HttpSocket, number>();
    const now = Date.now();
    for (const socket of sockets) {
      const response = socket._httpMessage;
      if (!response) {
        idleSince.set(socket, now);
      } else {
        if (!response.headersSent) response.setHeader('connection', 'close');
        response.once('finish', () => idleSince.set(socket, Date.now()));
      }
    }
    const sweep = setInterval(() => {
      const at = Date.now();
      for (const [socket, since] of idleSince) {
        if (socket.destroyed) idleSince.delete(socket);
        // A request that arrived meanwhile is answered with `connection: close`; Node ends it.
        else if (!socket._httpMessage && at - since >= idleGraceMs) {
          idleSince.delete(socket);
          socket.destroy();
        }
      }
      if (sockets.size === 0) clearInterval(sweep);
    }, SWEEP_MS);
    sweep.unref();
  };
}
