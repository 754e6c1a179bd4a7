#!/usr/bin/env node
'use strict';
// node_header: a Capuchin stage-20 plugin in Node.js, written from
// docs/plugin-contract.md and proto/capuchin/v1/plugin.proto alone. This
// file is the start-up every non-Go plugin needs (see "Writing a plugin in
// another language" in the contract); lib/stage.js is the plugin itself.

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const { logger } = require('./lib/log');
const stage = require('./lib/stage');
const peer = require('./lib/peer');

const COOKIE_KEY = 'CAPUCHIN_PLUGIN';
const COOKIE_VALUE = '6f1c2b9e-capuchin-stage-plugin';
const PROTOCOL = '1';
// The contract's proto, from the repository this plugin lives in; set
// CAPUCHIN_PROTO to use a copy elsewhere.
const CONTRACT = process.env.CAPUCHIN_PROTO || path.join(__dirname, '..', '..', 'proto', 'capuchin', 'v1', 'plugin.proto');

// checkHost exits unless the host started us with our cookie and protocol.
function checkHost() {
  if (process.env[COOKIE_KEY] !== COOKIE_VALUE) {
    process.stderr.write('node_header is a Capuchin plugin: the server starts it (see README.md)\n');
    process.exit(1);
  }
  const versions = (process.env.PLUGIN_PROTOCOL_VERSIONS || '').split(',');
  if (!versions.includes(PROTOCOL)) {
    process.stderr.write(`node_header speaks protocol ${PROTOCOL}; the host offers ${versions.join(',')}\n`);
    process.exit(1);
  }
}

// load returns the gRPC package objects of the three proto files.
function load() {
  const opts = { keepCase: true, longs: String, enums: String, defaults: true };
  const files = [CONTRACT, path.join(__dirname, 'lib', 'goplugin.proto'), path.join(__dirname, 'lib', 'health.proto')];
  return grpc.loadPackageDefinition(loader.loadSync(files, opts));
}

// watchdog exits when the host's end of the watchdog pipe closes.
function watchdog(exit) {
  const fd = Number(process.env.CAPUCHIN_WATCHDOG_FD);
  if (!Number.isInteger(fd) || fd < 3) return;
  const s = new net.Socket({ fd, readable: true, writable: false });
  s.on('data', () => {});
  s.on('end', () => exit('host gone (watchdog)'));
  s.on('error', () => exit('host gone (watchdog)'));
}

// goPlugin returns the go-plugin services' handlers; streams opened by the
// host stay open (and silent) until exit ends them.
function goPlugin(exit, open) {
  const hold = (call) => { open.add(call); call.on('error', () => {}); call.on('cancelled', () => open.delete(call)); };
  return {
    controller: { Shutdown: (_call, cb) => { cb(null, {}); setImmediate(() => exit('shutdown')); } },
    stdio: { StreamStdio: hold },
    broker: { StartStream: (call) => { hold(call); call.on('data', () => {}); } },
    health: { Check: (_call, cb) => cb(null, { status: 'SERVING' }) },
  };
}

function main() {
  checkHost();
  process.on('SIGINT', () => {}); // Ctrl-C reaches the whole group: the host stops us
  const log = logger();
  const pkg = load();
  const server = new grpc.Server();
  const dir = fs.mkdtempSync(path.join(process.env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir(), 'node_header-'));
  const sock = path.join(dir, 'plugin.sock');
  const open = new Set();
  let done = false;
  const exit = (why) => {
    if (done) return;
    done = true;
    log.debug('exiting', { reason: why });
    for (const c of open) c.end();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true }); // if never connected
    peer.close();
    process.exit(0);
  };
  const gp = goPlugin(exit, open);
  // The host connects once; with the socket gone, a plugin killed outright
  // leaves nothing in the temp folder.
  const unlink = () => fs.rmSync(dir, { recursive: true, force: true });
  const svc = stage.service(log, unlink);
  svc.peerCalls = peer.listen(CONTRACT, svc.answer, log); // before the handshake: the host may call once Describe says so
  server.addService(pkg.capuchin.v1.Plugin.service, svc);
  server.addService(pkg.plugin.GRPCController.service, gp.controller);
  server.addService(pkg.plugin.GRPCStdio.service, gp.stdio);
  server.addService(pkg.plugin.GRPCBroker.service, gp.broker);
  server.addService(pkg.grpc.health.v1.Health.service, gp.health);
  watchdog(exit);
  server.bindAsync('unix:' + sock, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`node_header: listen on ${sock}: ${err.message}\n`);
      process.exit(1);
    }
    // The handshake line: core protocol 1, app protocol, network, address, grpc.
    process.stdout.write(`1|${PROTOCOL}|unix|${sock}|grpc\n`);
  });
}

main();
