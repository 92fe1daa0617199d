// The dependency audit's answer, computed independently: which installed
// packages of a lockfile (package-lock.json v2 or v3, yarn.lock v1 read by
// yarn's own parser, yarn 2+'s yarn.lock and pnpm-lock.yaml v9 read by the
// yaml package) the OSV
// records in a directory affect, with npm's own semver deciding each range.
//
//   node affected.js LOCKFILE ADVISORIES_DIR
//
// Prints {"name@version": ["GHSA-…", …]} for every affected install.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const semver = require('semver');

const [lockfile, dir] = process.argv.slice(2);
const text = fs.readFileSync(lockfile, 'utf8');

// Every installed [name, version], whatever the lockfile.
function installed() {
  const base = path.basename(lockfile);
  if (base === 'yarn.lock' && text.includes('__metadata:')) {
    // yarn 2+: YAML; each entry's resolution is `name@npm:version`.
    const lock = require('yaml').parse(text);
    return Object.entries(lock)
      .filter(([key, entry]) => key !== '__metadata' && !entry.resolution.includes('@workspace:'))
      .map(([, entry]) => [entry.resolution.slice(0, entry.resolution.indexOf('@', 1)), String(entry.version)]);
  }
  if (base === 'yarn.lock') {
    const { object } = require('@yarnpkg/lockfile').parse(text);
    return Object.entries(object).map(([key, entry]) => [key.slice(0, key.lastIndexOf('@')), entry.version]);
  }
  if (base === 'pnpm-lock.yaml') {
    const lock = require('yaml').parse(text);
    return Object.keys(lock.snapshots || {}).map((key) => {
      const bare = key.split('(')[0];
      const at = bare.lastIndexOf('@');
      return [bare.slice(0, at), bare.slice(at + 1)];
    });
  }
  const lock = JSON.parse(text);
  return Object.entries(lock.packages || {})
    .filter(([key, entry]) => key && !entry.link)
    .map(([key, entry]) => [entry.name || key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length), entry.version]);
}
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
for (const [name, version] of installed()) {
  const entry = { version };
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
