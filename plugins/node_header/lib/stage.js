'use strict';
// The capuchin.v1.Plugin service of node_header: a stage-20 hook that
// answers a request lacking the configured header (or carrying another
// value than the configured ones) with the configured status, and lets
// every other request continue.

const conf = require('./conf');

const NAME = 'node_header';
const VERSION = require('../package.json').version;

// fields returns the values of header field `name` (lower case) in a
// request head: the request line, then "Name: value" lines, CRLF-separated
// (the host has validated it).
function fields(head, name) {
  const out = [];
  const lines = head.toString('latin1').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const colon = l.indexOf(':');
    if (colon > 0 && l.slice(0, colon).toLowerCase() === name) {
      out.push(l.slice(colon + 1).replace(/\r$/, '').trim());
    }
  }
  return out;
}

// verdict decides one request: null to continue, else the status.
function verdict(cfg, head) {
  const got = fields(head, cfg.name);
  const ok = cfg.values.size === 0 ? got.some((v) => v !== '') : got.some((v) => cfg.values.has(v));
  return ok ? null : cfg.status;
}

// reply answers one event.
function reply(cfg, ev) {
  if (ev.kind !== 'KIND_REQUEST') {
    return { id: ev.id, verdict: 'VERDICT_CONTINUE', error: `node_header hooks stage 20 only, got ${ev.kind}` };
  }
  const status = verdict(cfg, ev.head);
  if (status === null) return { id: ev.id, verdict: 'VERDICT_CONTINUE' };
  // An empty body: the host sends the site's error page for the status.
  return { id: ev.id, verdict: 'VERDICT_RESPOND', status };
}

// service returns the handlers of capuchin.v1.Plugin (and answer, the
// same decision for the peer socket). The host calls Configure, then
// Describe, then opens Calls and Notify. connected runs at the first
// Configure: the host's one connection is up by then. The caller sets
// peerCalls, which reports whether the peer socket listens.
function service(log, connected) {
  let cfg = null;
  const svc = {
    peerCalls: () => false,
    answer: (ev) => (cfg ? reply(cfg, ev) : { id: ev.id, error: 'not configured' }),
    Describe(_call, cb) {
      // deadline_ns 0: the host's default (1 s); fail-closed: 503 when down.
      cb(null, { name: NAME, version: VERSION, peer_calls: svc.peerCalls(),
        stages: [{ stage: 20, deadline_ns: '0', policy: 'POLICY_FAIL_CLOSED' }] });
    },
    Configure(call, cb) {
      connected();
      try {
        cfg = conf.load(call.request.config_path);
      } catch (err) {
        cb(null, { error: err.message });
        return;
      }
      log.info('configured', { header: cfg.display, values: cfg.values.size, status: cfg.status });
      cb(null, {});
    },
    Calls(call) {
      call.on('data', (ev) => {
        if (ev.id === '0') return; // posted events want no reply
        call.write(svc.answer(ev));
      });
      call.on('end', () => call.end());
      call.on('error', () => {}); // the host went away; the watchdog ends us
    },
    Notify(call, cb) {
      // Stage 40/50 batches: node_header hooks neither, so none come.
      call.on('data', () => {});
      call.on('end', () => cb(null, {}));
      call.on('error', () => {});
    },
  };
  return svc;
}

module.exports = { service, verdict, fields, NAME };
