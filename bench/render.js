#!/usr/bin/env node
// Benchmark: load and render a generated 1,000-host inventory (1 lb, 800 web, 199 db: one primary, 198 replicas)
// into a temp dir, then print the wall time and peak memory. Target: under 1 s and under 200 MB.
// Run after `npm run build` (it imports dist/): `node bench/render.js [hosts]`.
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {loadInventory} from '../dist/inventory/index.js'
import {renderHosts, writeRendered} from '../dist/cli/render-files.js'

const TOTAL = Number(process.argv[2] ?? 1000)
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
  console.log(`inventory: ${inv.hosts.length} hosts (1 lb, ${WEBS} web, ${DBS} db: 1 primary, ${DBS - 1} replicas)`)
  console.log(`rendered:  ${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MB, into ${hostDirs} host dirs`)
  console.log(`load:      ${(t1 - t0).toFixed(0)} ms`)
  console.log(`render:    ${(t2 - t1).toFixed(0)} ms (in memory)`)
  console.log(`write:     ${(t3 - t2).toFixed(0)} ms (${out.startsWith('/dev/shm') ? 'tmpfs' : 'TMPDIR'}: mostly the filesystem; TMPDIR=/dev/shm to leave it out)`)
  console.log(`wall time: ${wall.toFixed(0)} ms (load + render + write)   target < 1000 ms   ${wall < 1000 ? 'OK' : 'MISSED'}`)
  console.log(`peak RSS:  ${maxRssMb.toFixed(0)} MB (maxRSS; sampled rss max ${(peakRss / 1024 / 1024).toFixed(0)} MB)   target < 200 MB   ${maxRssMb < 200 ? 'OK' : 'MISSED'}`)
} finally {
  clearInterval(sampler)
  if (!process.env.KEEP) rmSync(dir, {recursive: true, force: true}); else console.log(dir)
}
