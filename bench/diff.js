#!/usr/bin/env node
// Benchmark: the plan's diff (src/engine/diff.ts) on a 16,000-line file: one line changed, then harder cases. Prints
// the time (median of 5) and peak memory, with the load average. Target (issue 20): any file a config can be in
// milliseconds (the LCS table it replaced took 27.7 s and 1 GB for the one-line change). Run after `npm run build`.
import {loadavg} from 'node:os'
import {performance} from 'node:perf_hooks'
import {unifiedDiff} from '../dist/engine/diff.js'

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
const lines = (n, prefix = 'line') => Array.from({length: n}, (_, i) => `${prefix} ${i + 1}\n`).join('')
const N = 16_000
const base = lines(N)
const CASES = [
  ['one line changed', base, base.replace('line 8000\n', 'line eight thousand\n')],
  ['every 100th line changed', base, base.replace(/line (\d*00)\n/g, 'changed $1\n')],
  ['a 500-line block replaced', base, base.replace(lines(8500).slice(lines(8000).length), lines(500, 'new'))],
  ['nothing in common (falls back)', base, lines(N, 'other')],
]

console.log(`diff of a ${N.toLocaleString('en')}-line file; load average before: ${load()}`)
for (const [name, before, after] of CASES) {
  const times = []
  let out = ''
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    out = unifiedDiff(before, after, '/etc/big.conf')
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  const hunks = out.split('\n').filter((l) => l.startsWith('@@')).length
  console.log(`${name.padEnd(32)} ${times[2].toFixed(1).padStart(8)} ms   ${String(hunks).padStart(4)} hunks`)
}
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; load average after: ${load()}`)
