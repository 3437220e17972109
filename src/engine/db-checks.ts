import {createHmac, randomBytes} from 'node:crypto'
import {MYSQL} from '../components/mysql/replication.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions} from '../remote/connection.js'
import {shq} from '../render/safe.js'
import {readSecret, sqlString} from '../secrets/index.js'
import {dbFacts} from './db.js'
import type {CheckResult} from './verify.js'

const VERIFY_USER = 'foobar_verify'

/**
 * The database as the application would notice it: a row written on the primary reaches every replica, a write
 * on a replica is refused (as an ordinary user: root may bypass read_only), and replication runs over TLS.
 */
export async function verifyDatabase(inv: Inventory, replicas: Host[], o: ConnectOptions & {timeoutMs: number}): Promise<CheckResult[]> {
  const mysql = inv.mysql!
  const primary = inv.hosts.find((h) => h.name === mysql.primary)!
  const fail = (host: string, check: string, detail: string): CheckResult => ({host, check, ok: false, detail})
  let password: string
  try {
    password = readSecret(mysql.replicationPassword, 'mysql.replication_password')
  } catch (error) {
    return replicas.map((r) => fail(r.name, 'replication', (error as Error).message))
  }
  // An ordinary user for the probe, created on the primary (it replicates); its password derives from the secret.
  const probePassword = createHmac('sha256', password).update('foobar-verify').digest('hex').slice(0, 32)
  const token = randomBytes(8).toString('hex')
  const conns: Connection[] = []
  try {
    const p = await Connection.open(primary, o)
    conns.push(p)
    await p.run(MYSQL, {
      stdin: [
        'CREATE DATABASE IF NOT EXISTS foobar_health;',
        'CREATE TABLE IF NOT EXISTS foobar_health.heartbeat (id INT PRIMARY KEY, token VARCHAR(32), at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);',
        `CREATE USER IF NOT EXISTS ${sqlString(VERIFY_USER)}@'localhost' IDENTIFIED BY ${sqlString(probePassword)};`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON foobar_health.* TO ${sqlString(VERIFY_USER)}@'localhost';`,
        `REPLACE INTO foobar_health.heartbeat (id, token) VALUES (1, '${token}');`,
      ].join('\n'),
    })
    const results: CheckResult[] = []
    for (const r of replicas) {
      const c = await Connection.open(r, o)
      conns.push(c)
      const t0 = Date.now()
      let seen = ''
      while (Date.now() - t0 < o.timeoutMs) {
        seen = (await c.run(`${MYSQL} -e "SELECT token FROM foobar_health.heartbeat WHERE id = 1"`, {check: false})).stdout.trim()
        if (seen === token) break
        await new Promise((res) => setTimeout(res, 250))
      }
      results.push(seen === token ? {host: r.name, check: 'replication: row from the primary', ok: true, detail: `arrived in ${((Date.now() - t0) / 1000).toFixed(1)}s`} : fail(r.name, 'replication: row from the primary', `not there after ${o.timeoutMs / 1000}s`))
      const write = await c.run(`MYSQL_PWD=${shq(probePassword)} mysql --protocol=socket -u ${VERIFY_USER} -e "INSERT INTO foobar_health.heartbeat (id, token) VALUES (2, 'replica')" 2>&1`, {check: false})
      results.push(
        write.code !== 0 && /read-only|read_only/i.test(write.stdout)
          ? {host: r.name, check: 'writes on the replica refused', ok: true, detail: 'read-only'}
          : fail(r.name, 'writes on the replica refused', write.code === 0 ? 'a write was ACCEPTED on a replica' : write.stdout.trim()),
      )
      const f = await dbFacts(c, inv)
      results.push(
        f.slave.Master_SSL_Allowed === 'Yes' ? {host: r.name, check: 'replication over tls', ok: true, detail: `from ${f.slave.Master_Host}, certificate verified`} : fail(r.name, 'replication over tls', `Master_SSL_Allowed=${f.slave.Master_SSL_Allowed ?? 'not replicating'}`),
      )
    }
    return results
  } catch (error) {
    return replicas.map((r) => fail(r.name, 'replication', (error as Error).message))
  } finally {
    for (const c of conns) c.close()
  }
}
