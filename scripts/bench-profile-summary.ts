/**
 * `node dist/scripts/bench-profile-summary.js FILE.cpuprofile [top]`: self time per function and per
 * package of a CPU profile written by `BENCH_PROFILE=<scenario> npm run bench` (or `node --cpu-prof`).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  console.error('usage: node dist/scripts/bench-profile-summary.js FILE.cpuprofile [top]');
  process.exit(1);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const total = profile.samples.length;

const packageOf = (url: string) => {
  if (!url) return '(native/idle)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node core';
  if (/\/dist\/|\/apps\/|\/libs\//.test(url)) return 'RSA code';
  return url.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
};

const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const [id, n] of hits) {
  const { callFrame } = byId.get(id)!;
  const where = callFrame.url ? `${callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|apps|libs)\//, '$1/')}:${callFrame.lineNumber + 1}` : '';
  const key = `${callFrame.functionName || '(anonymous)'} ${where}`.trim();
  byFunction.set(key, (byFunction.get(key) ?? 0) + n);
  const pkg = packageOf(callFrame.url);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + n);
}
const pct = (n: number) => `${((n / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`);
console.log('\nSelf time by package:');
for (const [k, n] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(n)}  ${k}`);
console.log(`\nTop ${top} functions by self time:`);
for (const [k, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(n)}  ${k}`);
