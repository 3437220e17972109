/**
 * The database tier (issue 8): GTID replication over TLS from bare hosts on seeded data, idempotent
 * re-provisioning, `db promote` without losing a committed row, and bad input that changes nothing.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, test} from 'vitest'
import {foobar, json, variant, waitFor} from './support/cli.js'
import {dbStatus} from './support/db.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'

const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)
const count = async (host: string) => Number((await mysql(host, 'SELECT COUNT(*) FROM shop.orders')).trim())

async function waitCount(host: string, want: number, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now()
  let n = -1
  while (Date.now() - t0 < timeoutMs) {
    n = await count(host).catch(() => -1)
    if (n === want) return n
    await new Promise((r) => setTimeout(r, 500))
  }
  return n
}

/** SHOW SLAVE STATUS in vertical form, with the field names (so not through mysql(), which uses -N). */
function slave(host: string) {
  return sshOk(host, 'sudo mysql -e "SHOW SLAVE STATUS\\G"').catch(() => '')
}

describe.skipIf(!labIsUp())('database replication', () => {
  beforeAll(() => {
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  test('a new, empty replica is seeded from the primary and replicates over TLS (GTID)', async () => {
    await mysql(
      'web1',
      'DROP DATABASE IF EXISTS shop; CREATE DATABASE shop; CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(20))',
    )
    await mysql('web1', "INSERT INTO shop.orders (item) VALUES ('a'), ('b'), ('c')")
    // web2 replaced by a new machine: an empty server that has never replicated.
    await sshOk(
      'web2',
      "sudo sh -c 'systemctl stop mariadb && rm -rf /var/lib/mysql && mariadb-install-db --user=mysql >/dev/null 2>&1 && systemctl start mariadb'",
    )
    expect(await slave('web2')).toBe('')
    // A server without foobar's fence table yet: its facts are whole all the same (read-only as its config says,
    // semi-sync, GTID). Read in one client run, they once stopped at the missing table: "writable", no semi-sync.
    const fresh = dbStatus(LAB_INVENTORY).body.hosts.find((h: {host: string}) => h.host === 'web2')
    expect(fresh).toMatchObject({up: true, readOnly: true, semiSync: {clients: 0}})
    const plan = foobar(['plan', '-i', LAB_INVENTORY, '--limit', 'web2'])
    expect(plan.stdout).toMatch(/seed from web1 and replicate \(GTID, TLS\)/)
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    // Progress lines go to stderr.
    expect(r.stderr).toMatch(/web2: seeding from web1: .*\bshop\b/)
    expect(await count('web2')).toBe(3)
    await mysql('web1', "INSERT INTO shop.orders (item) VALUES ('d')")
    expect(await waitCount('web2', 4)).toBe(4)
    const s = await slave('web2')
    expect(s).toMatch(/Slave_IO_Running: Yes/)
    expect(s).toMatch(/Slave_SQL_Running: Yes/)
    expect(s).toMatch(/Using_Gtid: Slave_Pos/)
    expect(s).toMatch(/Master_SSL_Allowed: Yes/)
    expect(s).toMatch(/Master_SSL_Verify_Server_Cert: Yes/)
    // The replication user is restricted to the database hosts' addresses and requires TLS.
    expect(await mysql('web1', "SELECT CONCAT(Host, ' ', ssl_type) FROM mysql.user WHERE User = 'repl'")).toBe('10.77.0.13 ANY\n')
    const v = foobar(['verify', '-i', LAB_INVENTORY, '--limit', 'web1,web2', '--json', '--no-lynis'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
    const checks = json(v.stdout).checks.map((c: {host: string; check: string}) => `${c.host} ${c.check}`)
    expect(checks).toEqual(
      expect.arrayContaining(['web2 replication: row from the primary', 'web2 writes on the replica refused', 'web2 replication over tls']),
    )
  })

  test('re-provisioning leaves replication running: 0 changes, no re-seed', async () => {
    // A row only the replica has (not binlogged): a re-seed would wipe it.
    await mysql(
      'web2',
      'SET SESSION sql_log_bin=0; CREATE TABLE IF NOT EXISTS shop.local_only (id INT); INSERT INTO shop.local_only VALUES (1)',
    )
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r.stdout).summary).toMatchObject({changed: 0, changes: 0, failed: 0})
    expect((await mysql('web2', 'SELECT COUNT(*) FROM shop.local_only')).trim()).toBe('1')
    expect(await slave('web2')).toMatch(/Slave_SQL_Running: Yes/)
    const status = foobar(['db', 'status', '-i', LAB_INVENTORY, '--json'])
    expect(status.code, status.stdout).toBe(0)
    const web2 = json(status.stdout).hosts.find((h: {host: string}) => h.host === 'web2')
    expect(web2).toMatchObject({role: 'replica', ioThread: 'Yes', sqlThread: 'Yes', tls: true, lagSeconds: 0, readOnly: true})
  })

  test('a rotated replication secret: provision moves both ends to it, verify passes on it, and back again', async () => {
    // The same lab, its replication secret read from another file: what an operator does to rotate it.
    const dir = mkdtempSync(join(tmpdir(), 'foobar-rotated-'))
    const secret = join(dir, 'repl_password')
    writeFileSync(secret, `rotated-${randomBytes(12).toString('hex')}\n`, {mode: 0o600})
    const rotated = variant('rotated', (t) => t.replace(/replication_password: \{file: [^}]+\}/, `replication_password: {file: ${secret}}`))
    for (const inv of [rotated, LAB_INVENTORY]) {
      const p = foobar(['provision', '-i', inv, '--yes'])
      expect(p.code, p.stdout + p.stderr).toBe(0)
      // The replica logs in with the new password (its IO thread reconnects within seconds).
      await waitFor("web2's replication IO thread", async () => /Slave_IO_Running: Yes/.test(await slave('web2')), 20_000)
      // verify's own database account follows the secret too (before, made once, it kept the first password and the
      // replica refused it at login: 'writes on the replica refused' failed after every rotation).
      const v = foobar(['verify', '-i', inv, '--limit', 'web1,web2', '--json', '--no-lynis'])
      expect(v.code, v.stdout + v.stderr).toBe(0)
      const write = json(v.stdout).checks.find((c: {host: string; check: string}) => c.check === 'writes on the replica refused')
      expect(write).toMatchObject({host: 'web2', ok: true})
    }
  })

  test('db promote switches the roles and no committed row is lost', async () => {
    const inv = variant('promote', (t) => `${t}\n# a copy that db promote --write may rewrite\n`)
    await mysql('web1', "INSERT INTO shop.orders (item) VALUES ('before1'), ('before2')")
    const before = await count('web1')
    const r = foobar(['db', 'promote', 'web2', '-i', inv, '--yes', '--write', '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(json(r.stdout)).toMatchObject({
      newPrimary: 'web2',
      oldPrimary: 'web1',
      oldPrimaryFenced: true,
      repointed: ['web1'],
      inventoryUpdated: true,
    })
    expect(await count('web2')).toBe(before)
    await mysql('web2', "INSERT INTO shop.orders (item) VALUES ('after1')")
    expect(await waitCount('web1', before + 1)).toBe(before + 1)
    // The old primary is a read-only replica now.
    expect(await slave('web1')).toMatch(/Master_Host: 10\.77\.0\.13/)
    // The inventory was updated; provisioning it renders the new roles and changes nothing else.
    const p = foobar(['provision', '-i', inv, '--yes'])
    expect(p.code, p.stdout + p.stderr).toBe(0)
    expect((await mysql('web1', 'SELECT @@read_only')).trim()).toBe('1')
    expect((await mysql('web2', 'SELECT @@read_only')).trim()).toBe('0')
    // And back, so the lab matches inventories/lab.yml again.
    const back = foobar(['db', 'promote', 'web1', '-i', inv, '--yes', '--write'])
    expect(back.code, back.stdout + back.stderr).toBe(0)
    expect(foobar(['provision', '-i', LAB_INVENTORY, '--yes']).code).toBe(0)
    expect(await count('web1')).toBe(before + 1)
    expect(await waitCount('web2', before + 1)).toBe(before + 1)
  })

  test('bad input: a replica named as the primary, a missing password secret — exit 2, nothing changed', () => {
    const both = variant('both', (t) => t.replace('replicas: [web2]', 'replicas: [web2, web1]'))
    const r1 = foobar(['provision', '-i', both, '--yes'])
    expect(r1.code).toBe(2)
    expect(r1.stderr).toMatch(/mysql\.replicas\[1\]: "web1" is the primary; a host cannot be both/)
    const noSecret = variant('nosecret', (t) =>
      t.replace(/replication_password: .*/, 'replication_password: {env: FOOBAR_TEST_MISSING_PASSWORD}'),
    )
    const r2 = foobar(['provision', '-i', noSecret, '--yes'])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(
      /mysql\.replication_password: environment variable FOOBAR_TEST_MISSING_PASSWORD is not set \(nothing was changed\)/,
    )
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  test('a replica that cannot reach the primary: a clear error, and the replica is left as it was', async () => {
    await mysql('web2', 'STOP SLAVE; RESET SLAVE ALL')
    // The network between them drops it: a table of its own (nftables), outside the iptables filter table that
    // foobar owns and empties when it finds rules there that are not its firewall's (the provision would lift it).
    await sshOk(
      'web2',
      "sudo nft add table inet foobar_test && sudo nft add chain inet foobar_test out '{ type filter hook output priority 0; }' && sudo nft add rule inet foobar_test out ip daddr 10.77.0.12 tcp dport 3306 drop",
    )
    try {
      const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
      expect(r.code, r.stdout + r.stderr).toBe(3)
      expect(r.stdout + r.stderr).toMatch(
        /web2 cannot reach the primary web1 at 10\.77\.0\.12:3306 \(timed out: a firewall\?\); nothing was changed on web2/,
      )
      expect(await slave('web2')).toBe('')
    } finally {
      await ssh('web2', 'sudo nft delete table inet foobar_test')
    }
    const fixed = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0)
    expect(await slave('web2')).toMatch(/Slave_SQL_Running: Yes/)
  })
})
