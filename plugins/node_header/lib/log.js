'use strict';
// Logging in the form the host re-emits: one hclog JSON object per line on
// stderr ("@level", "@message", "@timestamp", then key/value pairs). The
// host shows each line under plugins.<name> at the line's level. The
// timestamp must have exactly six fractional digits
// (2006-01-02T15:04:05.000000Z07:00): go-plugin shows any other line, JSON
// or not, as raw text at debug level.

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function line(level, msg, fields) {
  const ts = new Date().toISOString().replace('Z', '000Z'); // ms -> µs digits
  const o = { '@level': level, '@message': msg, '@timestamp': ts };
  for (const [k, v] of Object.entries(fields || {})) {
    o[k] = typeof v === 'bigint' ? v.toString() : v;
  }
  process.stderr.write(JSON.stringify(o) + '\n');
}

// logger returns {trace, debug, info, warn, error}, each (msg, fields).
function logger() {
  const l = {};
  for (const level of LEVELS) {
    l[level] = (msg, fields) => line(level, msg, fields);
  }
  return l;
}

module.exports = { logger };
