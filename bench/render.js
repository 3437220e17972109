#!/usr/bin/env node
// Benchmark: load and render generated inventories (1 lb; 80 % web; 20 % db: one primary, the rest replicas) into
// a temp dir; prints the time of each step and the peak memory, with the load average (2 shared cores: compare
// figures at a similar load).
//   node bench/render.js            the series: 1,000, 5,000 and 10,000 hosts, each in its own process
//   node bench/render.js 3000       one size, step by step
// Targets (issue 20): render 10,000 hosts in memory in <= 10 s and <= 1 GB; 1,000 hosts load + render + write
// < 1 s and < 200 MB. Run after `npm run build` (it imports dist/). TMPDIR=/dev/shm keeps the disk out of `write`.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
const SERIES = [1000, 5000, 10000]

if (process.argv[2] === undefined) {
  console.log(`render series (each size in a fresh node process); load average before: ${load()}`)
  console.log('hosts    load(ms)  render(ms)  write(ms)  peak RSS(MB)  load average (1/5/15 min)')
  const rows = []
  for (const n of SERIES) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), String(n), '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const r = JSON.parse(out.trim().split('\n').at(-1))
    rows.push(r)
    console.log(
      `${String(n).padStart(6)} ${r.load.toFixed(0).padStart(10)} ${r.render.toFixed(0).padStart(11)} ${r.write.toFixed(0).padStart(10)} ${r.maxRssMb.toFixed(0).padStart(13)}  ${r.loadavg}`,
    )
  }
  const big = rows.at(-1)
  console.log(
    `10,000 hosts: render ${(big.render / 1000).toFixed(1)} s in memory (target <= 10 s: ${big.render <= 10_000 ? 'OK' : 'MISSED'}), peak RSS ${big.maxRssMb.toFixed(0)} MB (target <= 1024 MB: ${big.maxRssMb <= 1024 ? 'OK' : 'MISSED'})`,
  )
  process.exit(0)
}

const {loadInventory} = await import('../dist/inventory/index.js')
const {renderHosts, writeRendered} = await import('../dist/cli/render-files.js')

const TOTAL = Number(process.argv[2])
const JSON_OUT = process.argv.includes('--json')
const DBS = Math.round(TOTAL * 0.199)
const WEBS = TOTAL - 1 - DBS

/** 10.<a>.<b>.<c> for host i, never .0 or .255. */
const address = (i) => `10.${Math.floor(i / 62500) + 1}.${Math.floor(i / 250) % 250}.${(i % 250) + 2}`

function inventoryYaml() {
  const hosts = [{name: 'lb1', roles: 'lb'}]
  for (let i = 1; i <= WEBS; i++) hosts.push({name: `web${i}`, roles: 'web'})
  for (let i = 1; i <= DBS; i++) hosts.push({name: `db${i}`, roles: 'db'})
  const replicas = hosts.filter((h) => h.roles === 'db' && h.name !== 'db1').map((h) => h.name)
  return [
    'site: {domain: www.foobar.com, aliases: [foobar.com], email: admin@foobar.com}',
    'ssh: {user: deploy, identity_file: ~/.ssh/id_ed25519}',
    'firewall: {backend: ufw, admin_cidrs: [198.51.100.0/24]}',
    'tls: {source: {type: acme, directory: https://acme-v02.api.letsencrypt.org/directory}}',
    'apt: {proxy: http://10.0.0.1:3142}',
    'monitoring: {sources: [198.51.100.10/32]}',
    'roles:',
    '  db:',
    '    firewall: {backend: iptables}',
    'mysql:',
    '  primary: db1',
    `  replicas: [${replicas.join(', ')}]`,
    '  replication_password: {env: FOOBAR_REPL_PASSWORD}',
    'hosts:',
    ...hosts.flatMap((h, i) => [`  - name: ${h.name}`, `    address: ${address(i)}`, `    roles: [${h.roles}]`]),
    '',
  ].join('\n')
}

let peakRss = process.memoryUsage().rss
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5)

const dir = mkdtempSync(join(tmpdir(), 'foobar-bench-'))
try {
  const file = join(dir, 'inventory.yml')
  writeFileSync(file, inventoryYaml())
  const out = join(dir, 'out')
  const loadBefore = load()

  // The same steps as `foobar render` (renderToDirectory = renderHosts + writeRendered), timed one by one.
  const t0 = performance.now()
  const inv = await loadInventory(file)
  const t1 = performance.now()
  const states = renderHosts(inv, inv.hosts)
  const t2 = performance.now()
  const files = writeRendered(states, out)
  const t3 = performance.now()
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  clearInterval(sampler)

  const bytes = files.reduce((n, f) => n + f.bytes, 0)
  const hostDirs = readdirSync(out).length
  if (hostDirs !== TOTAL) throw new Error(`expected ${TOTAL} host directories, got ${hostDirs}`)
  const maxRssMb = process.resourceUsage().maxRSS / 1024
  const wall = t3 - t0
  if (JSON_OUT) {
    console.log(JSON.stringify({hosts: TOTAL, load: t1 - t0, render: t2 - t1, write: t3 - t2, maxRssMb, loadavg: load()}))
  } else {
    console.log(`inventory: ${inv.hosts.length} hosts (1 lb, ${WEBS} web, ${DBS} db: 1 primary, ${DBS - 1} replicas)`)
    console.log(`rendered:  ${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MB, into ${hostDirs} host dirs`)
    console.log(`load:      ${(t1 - t0).toFixed(0)} ms`)
    console.log(`render:    ${(t2 - t1).toFixed(0)} ms (in memory)`)
    console.log(
      `write:     ${(t3 - t2).toFixed(0)} ms (${out.startsWith('/dev/shm') ? 'tmpfs' : 'TMPDIR'}: mostly the filesystem; TMPDIR=/dev/shm to leave it out)`,
    )
    console.log(
      `wall time: ${wall.toFixed(0)} ms (load + render + write)${TOTAL === 1000 ? `   target < 1000 ms   ${wall < 1000 ? 'OK' : 'MISSED'}` : ''}`,
    )
    console.log(
      `peak RSS:  ${maxRssMb.toFixed(0)} MB (maxRSS; sampled rss max ${(peakRss / 1024 / 1024).toFixed(0)} MB)${TOTAL === 1000 ? `   target < 200 MB   ${maxRssMb < 200 ? 'OK' : 'MISSED'}` : ''}`,
    )
    console.log(`load avg:  ${loadBefore} before, ${load()} after (1/5/15 min; 2 shared cores)`)
  }
} finally {
  clearInterval(sampler)
  if (!process.env.KEEP) rmSync(dir, {recursive: true, force: true})
  else console.error(dir)
}
