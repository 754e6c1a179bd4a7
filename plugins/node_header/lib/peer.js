'use strict';
// Peer calls (docs/plugin-contract.md, "Stage 20 under a lease"): the host
// names a path in CAPUCHIN_PEER_SOCKET; a stage-20 plugin that listens
// there (and says peer_calls in its manifest) is asked about every request
// a lease holder serves by that plugin itself, instead of ending its
// leases. Each connection carries frames both ways: a 4-byte big-endian
// length, then a serialized EventBatch (in) or ReplyBatch (out).

const fs = require('fs');
const net = require('net');
const protobuf = require('protobufjs');

const MAX_FRAME = 64 << 20;

// listen opens the peer socket when the host named one; answer(ev) returns
// the Reply for a stage-20 Event. It returns a function that reports
// whether the socket is listening (for the manifest).
function listen(contract, answer, log) {
  const path = process.env.CAPUCHIN_PEER_SOCKET;
  let up = false;
  if (!path) return () => up;
  const root = protobuf.loadSync(contract);
  const types = { events: root.lookupType('capuchin.v1.EventBatch'), replies: root.lookupType('capuchin.v1.ReplyBatch') };
  const server = net.createServer((sock) => serve(sock, types, answer));
  server.on('error', (err) => log.warn('no peer socket: the host calls this plugin for every request', { socket: path, error: err.message }));
  server.listen(path, () => { up = true; });
  return () => up;
}

// serve answers the frames of one lease holder's connection until it ends.
function serve(sock, types, answer) {
  let buf = Buffer.alloc(0);
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (n > MAX_FRAME) return sock.destroy();
      if (buf.length < 4 + n) break;
      const batch = types.events.toObject(types.events.decode(buf.subarray(4, 4 + n)), { longs: String, enums: String, defaults: true });
      buf = buf.subarray(4 + n);
      const replies = batch.events.map((ev) => answer({ ...ev, head: Buffer.from(ev.head) }));
      const body = types.replies.encode(types.replies.fromObject({ replies })).finish();
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length, 0);
      sock.write(Buffer.concat([head, body]));
    }
  });
}

// close removes the socket file (the host removes its folder too).
function close() {
  const path = process.env.CAPUCHIN_PEER_SOCKET;
  if (path) fs.rmSync(path, { force: true });
}

module.exports = { listen, close };
