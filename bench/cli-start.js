#!/usr/bin/env node
// Benchmark: how fast the CLI starts. Median (and fastest) wall time of `node bin/run.js ...` over N runs (default
// 10, after one warm-up) for --version, --help and `inventory check` (--no-files: the inventory's secrets and SSH
// key need not exist here), with the load average. Target (issue 20): --version <= 0.3 s, inventory check well under
// 0.5 s. Needs a build (`npm run build`: dist/ and oclif.manifest.json). `node bench/cli-start.js [runs]`.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join, resolve} from 'node:path'
import {performance} from 'node:perf_hooks'

const ROOT = resolve(import.meta.dirname, '..')
const RUNS = Number(process.argv[2] ?? 10)
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
const CASES = [
  ['--version', ['--version'], 300],
  ['--help', ['--help'], undefined],
  ['inventory check', ['inventory', 'check', '-i', 'inventories/foobar.yml', '--no-files'], 500],
]

if (!existsSync(join(ROOT, 'oclif.manifest.json')))
  console.log('note: no oclif.manifest.json (run `npm run build`): every command is imported at start')
console.log(`CLI start, ${RUNS} runs each (node ${process.version}); load average before: ${load()}`)
for (const [name, args, target] of CASES) {
  const times = []
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now()
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {
      cwd: ROOT,
      stdio: 'ignore',
      env: {...process.env, FOOBAR_INVENTORY: ''},
    })
    if (r.status !== 0) throw new Error(`foobar ${args.join(' ')} exited ${r.status}`)
    if (i > 0) times.push(performance.now() - t) // the first run warms the file cache
  }
  times.sort((a, b) => a - b)
  const median = times[Math.floor(times.length / 2)]
  const verdict = target === undefined ? '' : `   target <= ${target} ms   ${median <= target ? 'OK' : 'MISSED'}`
  console.log(`${name.padEnd(16)} median ${median.toFixed(0).padStart(5)} ms   fastest ${times[0].toFixed(0).padStart(5)} ms${verdict}`)
}
console.log(`load average after: ${load()} (1/5/15 min; 2 shared cores: compare at a similar load)`)
