/*
 * No secret on a command line (README: secrets travel only on stdin). The lab inventory, its secrets given through
 * a temporary file (replication password) and the environment (monitor password), with real private keys for the
 * site and every internal-CA leaf, planned and then provisioned on fake hosts (test/unit/support/fake-host.ts) with
 * scripted databases; every command foobar built (the script text: what would be the remote process's arguments)
 * is scanned for the secrets' values. Their stdin is where they may travel, and they must have travelled (else the
 * scan proved nothing).
 */
import {generateKeyPairSync} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import type {TlsMaterial} from '../../src/engine/contract.js'
import {leafKey} from '../../src/engine/contract.js'
import {runPlan} from '../../src/engine/run.js'
import {parseInventory} from '../../src/inventory/index.js'
import {FAST_HEALTH, type FakeFleet, fakeFleet, fastTimers} from './support/fake-host.js'
import {ROOT} from './support/render.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-secrets-'))
const fleets: FakeFleet[] = []
afterAll(() => {
  fleets.forEach((f) => f.cleanup())
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
  delete process.env.FOOBAR_SCAN_MONITOR_PASSWORD
})

const REPL_PASSWORD = 'ReplScan-7f3a9c1e5b2d4068'
const MONITOR_PASSWORD = 'MonScan-0c8e2a4f6b1d3957'

/** A real PKCS#8 private key and the base64 lines of its body (any of which on a command line is a leak). */
function privateKey(): {pem: string; body: string[]} {
  const pem = generateKeyPairSync('ec', {namedCurve: 'prime256v1'}).privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
  const body = pem.split('\n').filter((l) => l && !l.startsWith('-----'))
  return {pem, body}
}

const LEAF_NAMES = ['db', 'db-check', 'db-client', 'log']

function labInventory() {
  const replFile = join(TMP, 'repl_password')
  writeFileSync(replFile, `${REPL_PASSWORD}\n`, {mode: 0o600})
  process.env.FOOBAR_SCAN_MONITOR_PASSWORD = MONITOR_PASSWORD
  const file = join(ROOT, 'inventories', 'lab.yml')
  const text = readFileSync(file, 'utf8')
  const patched = text.replace(
    /replication_password: \{file: [^}]+\}/,
    `replication_password: {file: ${replFile}}\n  monitor_password: {env: FOOBAR_SCAN_MONITOR_PASSWORD}`,
  )
  expect(patched).not.toBe(text)
  return parseInventory(patched, file)
}

describe('secrets never on a command line: a full plan and provision of the lab inventory', () => {
  test('every script foobar builds is free of the secrets; they reach the hosts on stdin', async () => {
    const inv = labInventory()
    const keys: string[][] = []
    const site = privateKey()
    keys.push(site.body)
    const leaves: TlsMaterial['leaves'] = {}
    const leafBodies: Record<string, string[]> = {}
    for (const h of inv.hosts)
      for (const name of LEAF_NAMES) {
        const k = privateKey()
        keys.push(k.body)
        leafBodies[leafKey(name, h.name)] = k.body
        leaves[leafKey(name, h.name)] = {cert: '-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n', key: k.pem}
      }
    const material: TlsMaterial = {
      siteChain: '-----BEGIN CERTIFICATE-----\nSITE LEAF\n-----END CERTIFICATE-----\n',
      siteKey: site.pem,
      backendCa: '-----BEGIN CERTIFICATE-----\nBACKEND CA\n-----END CERTIFICATE-----\n',
      internalCa: '-----BEGIN CERTIFICATE-----\nINTERNAL CA\n-----END CERTIFICATE-----\n',
      leaves,
    }

    const fleet = fakeFleet(inv, {clientAddress: '10.77.0.1'})
    fleets.push(fleet)
    for (const fake of Object.values(fleet.hosts)) {
      // The exporters' units (the fake Debian has no image of these packages).
      for (const u of [
        'prometheus-node-exporter',
        'prometheus-nginx-exporter',
        'prometheus-mysqld-exporter',
        'prometheus-haproxy-exporter',
        'prometheus',
      ])
        fake.setUnit(u, 'disabled', 'inactive')
      // Databases: up, empty, no users, not replicating; every statement on stdin accepted.
      fake.command('mysqladmin', 'exit 0')
      // Once configured (CHANGE MASTER on stdin), SHOW SLAVE STATUS reports a running replica over TLS.
      fake.command(
        'mysql',
        [
          // The queries: with -e, or on stdin (the facts' queries and every statement).
          'case " $* " in *" -e "*) q=$* ;; *) q=$(cat) ;; esac',
          'case "$q" in',
          '  *"SHOW SLAVE STATUS"*) [ -f "$FAKE_STATE/replica" ] && printf "%s\\n" "Slave_IO_Running: Yes" "Slave_SQL_Running: Yes" "Master_SSL_Allowed: Yes" "Master_Host: 10.77.0.12" "Using_Gtid: Slave_Pos" ;;',
          '  *"CHANGE MASTER"*) : > "$FAKE_STATE/replica" ;;',
          'esac',
          'exit 0',
        ].join('\n'),
      )
      fake.command('mysqldump', 'exit 0')
      // The replica's reachability probe of the primary's port.
      fake.on(/^timeout 5 bash -c /, () => ({code: 0}))
      // Exporters answer with their `up` metric.
      fake.command('curl', 'printf "%s\\n" "nginx_up 1" "mysql_up 1" "haproxy_up 1"; exit 0')
    }

    const restore = fastTimers()
    try {
      for (const apply of [false, true]) {
        const r = await runPlan(STACK, inv, inv.hosts, {transport: fleet.transport, apply, concurrency: 4, material, health: FAST_HEALTH})
        expect(r.hosts.map((h) => [h.host, h.status, h.error])).toEqual(
          inv.hosts.map((h) => [h.name, apply ? 'changed' : 'pending', undefined]),
        )
      }
    } finally {
      restore()
    }

    const log = fleet.log()
    expect(log.length).toBeGreaterThan(50)
    const needles: Array<[string, string]> = [
      ['the replication password', REPL_PASSWORD],
      ['the monitor password', MONITOR_PASSWORD],
      ...keys.flatMap((lines, i) => lines.map((l): [string, string] => [`private key ${i} (base64 body)`, l])),
    ]
    const leaks = log.flatMap((c) =>
      needles.filter(([, v]) => c.script.includes(v)).map(([what]) => `${c.host}: ${what} in \`${c.script.slice(0, 200)}\``),
    )
    expect(leaks).toEqual([])

    // The scan saw the secrets travel (on stdin): the replication users, the exporter's password, the keys.
    const stdin = log.map((c) => c.stdin ?? '').join('\n')
    expect(stdin).toContain(REPL_PASSWORD)
    expect(stdin).toContain(MONITOR_PASSWORD)
    expect(stdin).toContain(site.body[1])
    expect(stdin).toContain(leafBodies[leafKey('db', 'web1')]![1])
    // Replication was configured (the password in CHANGE MASTER, on stdin).
    expect(stdin).toMatch(/CHANGE MASTER TO .*MASTER_PASSWORD='ReplScan-/)
  }, 120_000)
})
