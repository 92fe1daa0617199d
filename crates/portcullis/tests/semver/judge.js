// Reads {pairs: [[version, range]], orders: [[a, b]]} on stdin; prints
// what npm's semver says of each: satisfies(version, range) with npm's
// defaults, and compare(a, b) (null when either is not a version).
'use strict';
const semver = require('semver');

let input = '';
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  const { pairs, orders } = JSON.parse(input);
  const satisfies = pairs.map(([version, range]) => semver.satisfies(version, range));
  const compare = orders.map(([a, b]) => (semver.valid(a) && semver.valid(b) ? semver.compare(a, b) : null));
  process.stdout.write(JSON.stringify({ satisfies, compare }));
});
