// Reads JSON lines {source, flags} on stdin; writes one JSON line per
// pattern with recheck's and safe-regex's verdicts (recheck's attack
// included), for the ReDoS agreement test and benchmark.
import { check } from 'recheck';
import safeRegex from 'safe-regex';
import { createInterface } from 'node:readline';

const only = process.argv[2]; // "recheck" or "safe-regex": time one tool alone
const lines = createInterface({ input: process.stdin });
const patterns = [];
for await (const line of lines) {
  if (line.trim()) patterns.push(JSON.parse(line));
}

async function verdicts({ source, flags }) {
  const out = { source, flags };
  if (only !== 'safe-regex') {
    const r = await check(source, flags, { timeout: 10000 });
    out.recheck = { status: r.status, complexity: r.complexity?.type ?? null, degree: r.complexity?.degree ?? null };
    if (r.attack) out.recheck.attack = { pumps: r.attack.pumps, suffix: r.attack.suffix };
    if (r.error) out.recheck.error = r.error.kind;
  }
  if (only !== 'recheck') {
    let safe;
    try { safe = safeRegex(new RegExp(source, flags)); } catch { safe = null; }
    out.safeRegex = safe;
  }
  return out;
}

// recheck's native checker answers many requests at once.
const results = new Array(patterns.length);
let next = 0;
async function worker() {
  while (next < patterns.length) {
    const i = next++;
    results[i] = await verdicts(patterns[i]);
  }
}
await Promise.all(Array.from({ length: 8 }, worker));
for (const r of results) process.stdout.write(JSON.stringify(r) + '\n');
