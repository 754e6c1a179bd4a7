'use strict';
// Reads node_header's configuration file, in the Monkey format the host
// and every Capuchin plugin use:
//
//   # a comment
//   [HEADER]
//       Name   X-Api-Key
//       Value  s3cret
//
// A section starts with "[NAME]" at column 0; its entries are indented
// "Key value" lines. Keys are case-insensitive. Every error reads
// "file:line: key: what is wrong".

const fs = require('fs');

class ConfError extends Error {
  constructor(file, line, msg) {
    super(line ? `${file}:${line}: ${msg}` : `${file}: ${msg}`);
  }
}

// parse returns [{name, line, entries: [{key, value, line}]}].
function parse(file, text) {
  const sections = [];
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (!/^\s/.test(line)) {
      const m = /^\[([^\]\s]+)\]$/.exec(trimmed);
      if (!m) throw new ConfError(file, n, `malformed section header ${JSON.stringify(line)}`);
      sections.push({ name: m[1], line: n, entries: [] });
      return;
    }
    if (sections.length === 0) throw new ConfError(file, n, `${JSON.stringify(trimmed)} comes before any [SECTION]`);
    const m = /^(\S+)\s*(.*)$/.exec(trimmed);
    sections[sections.length - 1].entries.push({ key: m[1], value: m[2].trim(), line: n });
  });
  return sections;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// apply sets one entry on cfg or throws.
function apply(file, cfg, e) {
  const bad = (what) => new ConfError(file, e.line, `${e.key}: ${what}`);
  switch (e.key.toLowerCase()) {
    case 'name':
      if (!TOKEN.test(e.value)) throw bad(`${JSON.stringify(e.value)} is not a header field name`);
      cfg.name = e.value.toLowerCase();
      cfg.display = e.value;
      break;
    case 'value':
      if (e.value === '') throw bad('needs a value');
      cfg.values.add(e.value);
      break;
    case 'status': {
      const s = Number(e.value);
      if (!/^\d{3}$/.test(e.value) || s < 400 || s > 599) throw bad(`${JSON.stringify(e.value)} is not a status from 400 to 599`);
      cfg.status = s;
      break;
    }
    default:
      throw bad('unknown key (Name, Value, Status)');
  }
}

// load reads path; the file and its Name are required.
function load(path) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfError(path, 0, `cannot read: ${err.code || err.message}`);
  }
  const cfg = { name: '', display: '', values: new Set(), status: 401 };
  for (const s of parse(path, text)) {
    if (s.name.toUpperCase() !== 'HEADER') throw new ConfError(path, s.line, `unknown section [${s.name}] (want [HEADER])`);
    for (const e of s.entries) apply(path, cfg, e);
  }
  if (cfg.name === '') throw new ConfError(path, 0, 'Name: missing: say which header every request must carry');
  return cfg;
}

module.exports = { load, parse, ConfError };
