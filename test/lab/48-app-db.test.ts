/**
 * The app uses the database (issue 17, build item 1): with `mysql.app` the default app stores notes through its own
 * least-privilege account (REQUIRE SSL, SELECT and INSERT on one table), over TLS verified against foobar's internal
 * CA, through the database endpoint (and, without it, straight to the primary). A note is acknowledged (201) only
 * after COMMIT: the count grows by exactly the acknowledged number. The lab inventory itself has no mysql.app: this
 * file provisions its own variant and puts the lab back to inventories/lab.yml afterwards.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {prepareMaterial} from '../../src/components/index.js'
import {loadInventory} from '../../src/inventory/index.js'
import {foobar, json, variant} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'
import {viaLb} from './support/notes.js'

const WEB = ['web1', 'web2']
const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)

describe.skipIf(!labIsUp())('the app uses the database', () => {
  // The app's password: a secret file of this test (0600), referenced like production would.
  const secret = join(mkdtempSync(join(tmpdir(), 'foobar-app-db-')), 'app_db_password')
  writeFileSync(secret, `${randomBytes(18).toString('base64url')}\n`, {mode: 0o600})
  const app = `  app: {password: {file: ${secret}}}\n`
  const withEndpoint = variant('app-db', (t) => t.replace('  replication_user: repl\n', `  replication_user: repl\n  endpoint: {}\n${app}`))
  const direct = variant('app-db-direct', (t) => t.replace('  replication_user: repl\n', `  replication_user: repl\n${app}`))
  let domain: string
  let ca: string

  const count = async () => {
    const r = await viaLb(domain, ca, 'GET', '/api/notes/count')
    expect(r.status, r.body).toBe(200)
    return (JSON.parse(r.body) as {count: number}).count
  }

  /** POSTs `n` notes through the LB, two at a time; the ids and hosts of those acknowledged with 201. */
  async function post(n: number, label: string) {
    const acked: Array<{id: number; host: string}> = []
    const failed: string[] = []
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        try {
          const r = await viaLb(domain, ca, 'POST', '/api/notes', JSON.stringify({body: `${label} note ${i}`}))
          if (r.status === 201) acked.push(JSON.parse(r.body) as {id: number; host: string})
          else failed.push(`HTTP ${r.status}: ${r.body.trim()}`)
        } catch (error) {
          failed.push((error as Error).message)
        }
      }
    }
    await Promise.all([worker(), worker()])
    return {acked, failed}
  }

  beforeAll(async () => {
    const inv = await loadInventory(LAB_INVENTORY)
    domain = inv.site.domain
    const r = foobar(['provision', '-i', withEndpoint, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    // After provision: on a first run (this file alone on a new checkout) the internal CA does not exist before it.
    ca = prepareMaterial(inv).backendCa
  })

  afterAll(async () => {
    // Back to the lab inventory (no mysql.app: the password and CA files go); the endpoint stopped as 47 leaves it;
    // the notes database and the app's accounts dropped on the primary (the drop replicates).
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    for (const h of WEB) await ssh(h, 'sudo systemctl disable --now foobar-db-endpoint foobar-db-writer-check 2>/dev/null; true')
    await mysql('web1', "DROP DATABASE IF EXISTS foobar_app; DROP USER IF EXISTS 'foobar_app'@'10.77.0.12', 'foobar_app'@'10.77.0.13'")
  })

  test('through the LB: 50 notes acknowledged, the count grows by exactly that many, from both web servers; /readyz 200', async () => {
    const before = await count()
    const t0 = Date.now()
    const {acked, failed} = await post(50, 'endpoint')
    const seconds = (Date.now() - t0) / 1000
    expect(failed).toEqual([])
    expect(acked).toHaveLength(50)
    expect(new Set(acked.map((a) => a.id)).size).toBe(50)
    // Round robin: both web servers wrote, web2 through its endpoint to the primary on web1.
    expect(new Set(acked.map((a) => a.host))).toEqual(new Set(WEB))
    expect(await count()).toBe(before + acked.length)
    // The rows are on the replica too (replicated), with the ids that were acknowledged.
    const ids = acked.map((a) => a.id).join(',')
    const deadline = Date.now() + 20_000
    let onReplica = ''
    while (Date.now() < deadline && onReplica !== '50') {
      onReplica = (await mysql('web2', `SELECT COUNT(*) FROM foobar_app.notes WHERE id IN (${ids})`)).trim()
      if (onReplica !== '50') await new Promise((r) => setTimeout(r, 500))
    }
    expect(onReplica).toBe('50')
    expect(await viaLb(domain, ca, 'GET', '/readyz')).toMatchObject({status: 200, body: 'ready\n'})
    for (const h of WEB) expect(await sshOk(h, 'curl -sS -m 5 http://127.0.0.1:8080/readyz')).toBe('ready\n')
    console.log(`app db: 50 notes acknowledged through the LB in ${seconds.toFixed(1)} s, count +${acked.length}, 0 failed`)
  })

  test('verify passes the app check; the account: REQUIRE SSL, SELECT and INSERT on the table only; a second provision changes nothing', async () => {
    const v = foobar(['verify', '-i', withEndpoint, '--limit', 'web1,web2', '--no-lynis', '--json'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
    expect(v.stdout).toMatch(/app reaches its database/)
    for (const db of WEB)
      for (const address of ['10.77.0.12', '10.77.0.13']) {
        const grants = await mysql(db, `SHOW GRANTS FOR 'foobar_app'@'${address}'`)
        expect(grants, `${db}: foobar_app@${address}`).toMatch(
          new RegExp(
            `^GRANT USAGE ON \\*\\.\\* TO \`foobar_app\`@\`${address.replaceAll('.', '\\.')}\` IDENTIFIED BY PASSWORD '\\*[0-9A-F]{40}' REQUIRE SSL\\n` +
              `GRANT SELECT, INSERT ON \`foobar_app\`\\.\`notes\` TO \`foobar_app\`@\`${address.replaceAll('.', '\\.')}\`\\n$`,
          ),
        )
      }
    const again = foobar(['provision', '-i', withEndpoint, '--yes', '--json'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(json(again.stdout).summary).toMatchObject({changed: 0, changes: 0, failed: 0})
    const plan = foobar(['plan', '-i', withEndpoint, '--detailed-exitcode'])
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
  })

  test('the password: a 0600 root file on the web servers, in no other file under /etc or /opt, on no command line', async () => {
    for (const h of WEB) {
      expect(await sshOk(h, 'sudo stat -c "%a %U %G" /etc/foobar/app/db-password')).toBe('600 root root\n')
      // grep -f: the password is read from the file itself, never written on a command line by this test either.
      const files = await sshOk(h, 'sudo grep -rlF -f /etc/foobar/app/db-password /etc /opt/foobar-app 2>/dev/null || true')
      expect(files.trim().split('\n')).toEqual(['/etc/foobar/app/db-password'])
      const cmdlines = await sshOk(h, "sudo sh -c 'grep -lF -f /etc/foobar/app/db-password /proc/[0-9]*/cmdline 2>/dev/null || true'")
      expect(cmdlines.trim()).toBe('')
      const journal = "sudo sh -c 'journalctl -u foobar-app --no-pager -q | grep -cF -f /etc/foobar/app/db-password || true'"
      expect(await sshOk(h, journal)).toBe('0\n')
    }
  })

  test('without the endpoint, straight to the primary (its name verified too): notes are still stored', async () => {
    const r = foobar(['provision', '-i', direct, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(await sshOk('web2', 'grep -E "^DB_(HOST|VERIFY_NAME)" /opt/foobar-app/app.py')).toBe(
      'DB_HOST = "10.77.0.12"\nDB_VERIFY_NAME = True\n',
    )
    const before = await count()
    const {acked, failed} = await post(10, 'direct')
    expect(failed).toEqual([])
    expect(acked).toHaveLength(10)
    expect(await count()).toBe(before + 10)
    for (const h of WEB) expect(await sshOk(h, 'curl -sS -m 5 http://127.0.0.1:8080/readyz')).toBe('ready\n')
    const plan = foobar(['plan', '-i', direct, '--detailed-exitcode'])
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
  })
})
