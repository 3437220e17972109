import {createHash} from 'node:crypto'
import type {Host, Inventory} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'
import {sqlString} from '../../secrets/index.js'
import {TLS_PATHS} from '../tls/profile.js'

/*
 * GTID replication over TLS, as facts (one shell snippet), a pure comparison, and the SQL that converges it.
 * Secrets only ever travel on mysql's stdin.
 */

export const MYSQL = 'mysql --protocol=socket -N -B'

export function dbFactsScript(replUser: string): string {
  return [
    `if command -v mysql >/dev/null 2>&1 && mysqladmin --connect-timeout=3 ping >/dev/null 2>&1; then`,
    `  echo "up"`,
    `  ${MYSQL} -e "SELECT CONCAT('user ', User, ' ', Host, ' ', Password, ' ', ssl_type) FROM mysql.user WHERE User = ${sqlString(replUser)}" 2>/dev/null || true`,
    `  mysql --protocol=socket -e 'SHOW SLAVE STATUS\\G' 2>/dev/null | sed -n 's/^ *\\([A-Za-z_]*\\): \\(.*\\)$/slave \\1 \\2/p'`,
    `  ${MYSQL} -e "SELECT CONCAT('userdbs ', COUNT(DISTINCT table_schema)) FROM information_schema.tables WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys','foobar_health')"`,
    `  ${MYSQL} -e "SELECT CONCAT('vars ', @@read_only, ' ', @@server_id, ' ', IFNULL(@@gtid_binlog_pos,''), ' ', IFNULL(@@gtid_slave_pos,''))"`,
    `else echo "down"; fi`,
  ].join('\n')
}

export interface DbFacts {
  up: boolean
  users: Array<{user: string; host: string; hash: string; ssl: string}>
  slave: Record<string, string>
  userDatabases: number
  readOnly?: boolean
  serverId?: number
  gtidBinlogPos?: string
  gtidSlavePos?: string
}

export function parseDbFacts(lines: string[], replUser: string): DbFacts {
  const f: DbFacts = {up: false, users: [], slave: {}, userDatabases: 0}
  for (const line of lines) {
    const [kind, ...rest] = line.split(' ')
    if (kind === 'up') f.up = true
    else if (kind === 'user' && rest[0] === replUser)
      f.users.push({user: rest[0]!, host: rest[1]!, hash: rest[2] ?? '', ssl: rest[3] ?? ''})
    else if (kind === 'slave') f.slave[rest[0]!] = rest.slice(1).join(' ')
    else if (kind === 'userdbs') f.userDatabases = Number(rest[0])
    else if (kind === 'vars') {
      f.readOnly = rest[0] === '1' || rest[0] === 'ON'
      f.serverId = Number(rest[1])
      f.gtidBinlogPos = rest[2] ?? ''
      f.gtidSlavePos = rest[3] ?? ''
    }
  }
  return f
}

/** MariaDB's mysql_native_password hash, to compare without sending the secret anywhere. */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password).digest()
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`
}

/** The replication user exists for every database host's address (so a promoted replica has users for all). */
export function replicationPeers(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.db !== undefined)
}

export type DbAction = {kind: 'users'; hosts: string[]} | {kind: 'seed'; from: string} | {kind: 'configure'; from: string; why: string}

/** Pure: what this database host needs for replication. A running replica is never re-seeded or reset. */
export function planReplication(inv: Inventory, host: Host, facts: DbFacts, password: string): DbAction[] {
  const mysql = inv.mysql!
  const primary = inv.hosts.find((h) => h.name === mysql.primary)!
  if (host.db?.role === 'primary') {
    const want = replicationPeers(inv).filter((h) => h !== host)
    const hash = nativePasswordHash(password)
    const missing = want.filter((h) => !facts.users.some((u) => u.host === h.address && u.hash === hash && u.ssl === 'ANY'))
    return missing.length ? [{kind: 'users', hosts: missing.map((h) => h.address)}] : []
  }
  const s = facts.slave
  if (Object.keys(s).length === 0) {
    // Never configured: a new or empty replica (no tables of its own) is seeded from the primary first.
    return facts.userDatabases === 0 || !facts.up
      ? [{kind: 'seed', from: primary.name}]
      : [{kind: 'configure', from: primary.name, why: 'not replicating'}]
  }
  const why: string[] = []
  if (s.Master_Host !== primary.address) why.push(`replicates from ${s.Master_Host}, not ${primary.address}`)
  if (s.Slave_IO_Running !== 'Yes') why.push(`IO thread ${s.Slave_IO_Running}${s.Last_IO_Error ? `: ${s.Last_IO_Error}` : ''}`)
  if (s.Slave_SQL_Running !== 'Yes') why.push(`SQL thread ${s.Slave_SQL_Running}${s.Last_SQL_Error ? `: ${s.Last_SQL_Error}` : ''}`)
  if (s.Using_Gtid !== 'Slave_Pos') why.push(`GTID mode ${s.Using_Gtid}`)
  if (s.Master_SSL_Allowed !== 'Yes') why.push('without TLS')
  return why.length ? [{kind: 'configure', from: primary.name, why: why.join('; ')}] : []
}

/** SQL for the primary: a least-privilege user per database host address, TLS required. */
export function usersSql(user: string, password: string, addresses: string[]): string {
  return addresses
    .map((a) => {
      const account = `${sqlString(user)}@${sqlString(a)}`
      return [
        `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ${sqlString(password)} REQUIRE SSL;`,
        `ALTER USER ${account} IDENTIFIED BY ${sqlString(password)} REQUIRE SSL;`,
        `GRANT REPLICATION SLAVE ON *.* TO ${account};`,
      ].join('\n')
    })
    .join('\n')
}

/** SQL for a replica: GTID replication from the primary over verified TLS, then start it. */
export function changeMasterSql(primary: Host, user: string, password: string, port: number): string {
  return [
    'STOP SLAVE;',
    `CHANGE MASTER TO MASTER_HOST=${sqlString(primary.address)}, MASTER_PORT=${port}, MASTER_USER=${sqlString(user)}, MASTER_PASSWORD=${sqlString(password)},`,
    `  MASTER_SSL=1, MASTER_SSL_CA=${sqlString(TLS_PATHS.dbCa)}, MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos;`,
    'START SLAVE;',
  ].join('\n')
}

/** The user databases on the primary, for the seed dump. */
export const LIST_DATABASES = `${MYSQL} -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','information_schema','performance_schema','sys')"`

/** A consistent dump with its GTID position (`SET GLOBAL gtid_slave_pos`), streamed, never written to disk. */
export function dumpCommand(databases: string[]): string {
  return `mysqldump --single-transaction --gtid --master-data=1 --routines --events --triggers --databases ${databases.map(shq).join(' ')}`
}
