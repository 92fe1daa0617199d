// The dependency audit's answer, computed independently: which installed
// packages of a package-lock.json (v2 or v3) the OSV records in a directory
// affect, with npm's own semver deciding each range.
//
//   node affected.js LOCKFILE ADVISORIES_DIR
//
// Prints {"name@version": ["GHSA-…", …]} for every affected install.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const semver = require('semver');

const [lockfile, dir] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockfile, 'utf8'));
const records = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));

// An OSV range as npm ranges: introduced opens, fixed closes before,
// last_affected closes at.
function ranges(events) {
  const sorted = [...events].sort((a, b) => semver.compare(Object.values(a)[0] === '0' ? '0.0.0' : Object.values(a)[0], Object.values(b)[0] === '0' ? '0.0.0' : Object.values(b)[0]));
  const out = [];
  let from = null;
  for (const event of sorted) {
    if (event.introduced !== undefined) from = event.introduced === '0' ? '0.0.0' : event.introduced;
    if (event.fixed !== undefined) { out.push(`>=${from ?? '0.0.0-0'} <${event.fixed}`); from = null; }
    if (event.last_affected !== undefined) { out.push(`>=${from ?? '0.0.0-0'} <=${event.last_affected}`); from = null; }
  }
  if (from !== null) out.push(`>=${from}`);
  return out;
}

const affected = {};
for (const [key, entry] of Object.entries(lock.packages || {})) {
  if (!key || entry.link) continue;
  const name = entry.name || key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
  for (const record of records) {
    for (const a of record.affected || []) {
      if (a.package?.ecosystem !== 'npm' || a.package.name !== name) continue;
      const hit = (a.versions || []).includes(entry.version) ||
        (a.ranges || []).filter((r) => r.type !== 'GIT').some((r) => ranges(r.events).some((range) => semver.satisfies(entry.version, range, { includePrerelease: true })));
      if (hit) {
        const id = `${name}@${entry.version}`;
        affected[id] = [...new Set([...(affected[id] || []), record.id])].sort();
      }
    }
  }
}
process.stdout.write(JSON.stringify(affected));
