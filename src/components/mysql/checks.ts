import {createHmac, randomBytes} from 'node:crypto'
import {MYSQL} from './replication.js'
import type {Check, CheckContext} from '../../engine/contract.js'
import {readSecret, sqlString} from '../../secrets/index.js'
import {dbFacts} from './replicate.js'

const VERIFY_USER = 'foobar_verify'

/**
 * Pure: the 'writes on the replica refused' verdict from the probe write's exit code and output. The probe's account
 * is made on the primary and reaches a replica by replication: until it has, the replica refuses the login (ERROR
 * 1045 or 1698), which says nothing yet about read-only; verify tries again, and its progress line says why the login
 * was refused instead of showing a bare "Access denied" that reads like the check failing.
 */
export function replicaWriteVerdict(code: number, output: string): {ok: boolean; detail: string} {
  if (code !== 0 && /read-only|read_only/i.test(output)) return {ok: true, detail: 'read-only'}
  if (code === 0) return {ok: false, detail: 'a write was ACCEPTED on a replica'}
  const said = output.trim()
  if (/^ERROR (1045|1698) /m.test(said)) {
    return {
      ok: false,
      detail: `the replica refused verify's account at login (made on the primary, it comes by replication: not there yet, or with another password): ${said}`,
    }
  }
  return {ok: false, detail: said}
}

/**
 * What verify runs on the primary before its replication checks (it all replicates): the heartbeat table and row, and
 * its own ordinary account, whose password derives from the replication secret. The account gets that password
 * every time, not only when it is created: after the secret is rotated, an account made with the old one would be
 * refused at the replica's login (ERROR 1045) and the check would fail for a reason that is not the replica's.
 */
export function heartbeatSql(probePassword: string, token: string): string {
  const account = `${sqlString(VERIFY_USER)}@'localhost'`
  return [
    'CREATE DATABASE IF NOT EXISTS foobar_health;',
    'CREATE TABLE IF NOT EXISTS foobar_health.heartbeat (id INT PRIMARY KEY, token VARCHAR(32), at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);',
    `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ${sqlString(probePassword)};`,
    `ALTER USER ${account} IDENTIFIED BY ${sqlString(probePassword)};`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON foobar_health.* TO ${account};`,
    `REPLACE INTO foobar_health.heartbeat (id, token) VALUES (1, '${token}');`,
  ].join('\n')
}

/**
 * The database as the application would notice it, on each replica: a row written on the primary (once per verify
 * run) reaches it, a write on it is refused (as an ordinary user: root may bypass read_only), and it replicates
 * over TLS.
 */
export function databaseChecks(ctx: CheckContext): Check[] {
  const inv = ctx.inventory
  const mysql = inv.mysql
  // Galera has its own checks (components/galera): every member takes writes.
  if (!mysql?.primary || ctx.host.db?.role !== 'replica' || mysql.topology === 'galera') return []
  const primary = inv.hosts.find((h) => h.name === mysql.primary)!
  const c = ctx.runner
  // An ordinary user for the probe, created on the primary (it replicates); its password derives from the secret.
  const setup = () =>
    ctx.shared('mysql:heartbeat', async () => {
      const password = readSecret(mysql.replicationPassword, 'mysql.replication_password')
      const probePassword = createHmac('sha256', password).update('foobar-verify').digest('hex').slice(0, 32)
      const token = randomBytes(8).toString('hex')
      const p = await ctx.connect(primary)
      await p.run(MYSQL, {stdin: heartbeatSql(probePassword, token)})
      return {token, probePassword, at: Date.now()}
    })
  return [
    {
      name: 'replication: row from the primary',
      run: async () => {
        const {token, at} = await setup()
        const seen = (await c.run(`${MYSQL} -e "SELECT token FROM foobar_health.heartbeat WHERE id = 1"`, {check: false})).stdout.trim()
        return seen === token
          ? {ok: true, detail: `arrived in ${((Date.now() - at) / 1000).toFixed(1)}s`}
          : {ok: false, detail: `not there yet (${seen || 'no row'})`}
      },
    },
    {
      name: 'writes on the replica refused',
      run: async () => {
        const {probePassword} = await setup()
        // The password goes on stdin as an option file, never on a command line.
        const write = await c.run(
          `mysql --defaults-extra-file=/dev/stdin --protocol=socket --loose-skip-ssl -u ${VERIFY_USER} -e "INSERT INTO foobar_health.heartbeat (id, token) VALUES (2, 'replica')" 2>&1`,
          {
            check: false,
            stdin: `[client]\npassword=${probePassword}\n`,
          },
        )
        return replicaWriteVerdict(write.code, write.stdout)
      },
    },
    {
      name: 'replication over tls',
      run: async () => {
        const f = await dbFacts(c, inv)
        return f.slave.Master_SSL_Allowed === 'Yes'
          ? {ok: true, detail: `from ${f.slave.Master_Host}, certificate verified`}
          : {ok: false, detail: `Master_SSL_Allowed=${f.slave.Master_SSL_Allowed ?? 'not replicating'}`}
      },
    },
  ]
}
