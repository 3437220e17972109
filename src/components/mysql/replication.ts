import {createHash} from 'node:crypto'
import type {Host, Inventory} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'
import {sqlString} from '../../secrets/index.js'
import {TLS_PATHS} from '../tls/profile.js'
import {FENCE, dbPeers, fencePassword} from './fence.js'
import {Failure} from '../../util/errors.js'

/*
 * GTID replication over TLS, as facts (one shell snippet), a pure comparison, and the SQL that converges it.
 * Secrets only ever travel on mysql's stdin.
 */

/**
 * The local client over the unix socket. `--loose-skip-ssl` everywhere foobar runs mysql or mysqladmin on the
 * socket: MariaDB 10.11's client otherwise negotiates TLS over it too, which cost each call 40-45 ms of CPU on a lab
 * host (`mysqladmin ping` 45 -> 7 ms, a query 53 -> 12 ms) and buys nothing on a local socket. `loose-`: a client
 * without the option (MySQL 8 removed it; it never uses TLS on a socket) warns instead of failing.
 */
export const MYSQL = 'mysql --protocol=socket --loose-skip-ssl -N -B'

/**
 * The database's live state: the lines of the per-query form (a `mysqladmin ping`, then one `mysql` per query),
 * with one client run for all the queries (issue 20: 7 clients took ~250-400 ms on a lab host). The queries reach
 * the client on its standard input, where `--force` goes on past a query that fails (the fence's table not created
 * yet), as each separate client did. Given with `-e`, the client stops at the first failing query whatever
 * `--force` says (MariaDB 10.11): on a first convergence the facts then lost everything after the writer record
 * (semi-sync, user databases, read_only, GTID positions), and a replica with databases of its own but no fence table
 * yet was planned as empty (seeded, not configured). Column names stay on
 * (SHOW SLAVE STATUS\G prints its fields' names only with them), and the filter keeps the tagged rows and turns the
 * vertical fields into `slave NAME VALUE` lines. Nothing at all from the client (not running, or no login): the
 * ping decides up or down, as before.
 */
export function dbFactsScript(replUser: string): string {
  const queries = [
    `SELECT CONCAT('user ', User, ' ', Host, ' ', Password, ' ', ssl_type) AS fb FROM mysql.user WHERE User IN (${sqlString(replUser)}, '${FENCE.user}')`,
    `SELECT CONCAT('writer ', generation, ' ', writer) AS fb FROM ${FENCE.database}.writer WHERE id = 1`,
    `SELECT CONCAT('semisync ', LOWER(VARIABLE_NAME), ' ', VARIABLE_VALUE) AS fb FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_slave_status', 'Rpl_semi_sync_master_no_tx', 'Rpl_semi_sync_master_yes_tx', 'Rpl_semi_sync_master_clients')`,
    `SHOW SLAVE STATUS\\G`,
    `SELECT CONCAT('userdbs ', COUNT(DISTINCT table_schema)) AS fb FROM information_schema.tables WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys','foobar_health','${FENCE.database}')`,
    `SELECT CONCAT('vars ', @@read_only, ' ', @@server_id, ' ', IFNULL(@@gtid_binlog_pos,''), ' ', IFNULL(@@gtid_slave_pos,'')) AS fb`,
  ]
  // Every query ends with ; but SHOW SLAVE STATUS, which ends with \G (vertical output).
  const sql = queries.map((q) => (q.endsWith('\\G') ? q : `${q};`)).join(' ')
  return [
    `fb_db=`,
    `if command -v mysql >/dev/null 2>&1; then`,
    `  fb_db=$(printf '%s\\n' ${shq(sql)} | mysql --protocol=socket --loose-skip-ssl --connect-timeout=3 --force -B 2>/dev/null | sed -n -e 's/^ *\\([A-Za-z_]*\\): \\(.*\\)$/slave \\1 \\2/p' -e '/^\\(user\\|writer\\|semisync\\|userdbs\\|vars\\) /p')`,
    `fi`,
    `if [ -n "$fb_db" ]; then echo "up"; printf '%s\\n' "$fb_db"`,
    `elif command -v mysql >/dev/null 2>&1 && mysqladmin --loose-skip-ssl --connect-timeout=3 ping >/dev/null 2>&1; then echo "up"`,
    `else echo "down"; fi`,
    `[ -s ${FENCE.marker} ] && echo "fenced $(head -c 200 ${FENCE.marker} | tr '\\n' ' ')"`,
    'true',
  ].join('\n')
}

/** The per-query form dbFactsScript replaced (kept as the reference its tests compare with). */
export function dbFactsScriptPerQuery(replUser: string): string {
  return [
    `if command -v mysql >/dev/null 2>&1 && mysqladmin --loose-skip-ssl --connect-timeout=3 ping >/dev/null 2>&1; then`,
    `  echo "up"`,
    `  ${MYSQL} -e "SELECT CONCAT('user ', User, ' ', Host, ' ', Password, ' ', ssl_type) FROM mysql.user WHERE User IN (${sqlString(replUser)}, '${FENCE.user}')" 2>/dev/null || true`,
    `  ${MYSQL} -e "SELECT CONCAT('writer ', generation, ' ', writer) FROM ${FENCE.database}.writer WHERE id = 1" 2>/dev/null || true`,
    `  ${MYSQL} -e "SELECT CONCAT('semisync ', LOWER(VARIABLE_NAME), ' ', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_slave_status', 'Rpl_semi_sync_master_no_tx', 'Rpl_semi_sync_master_yes_tx', 'Rpl_semi_sync_master_clients')" 2>/dev/null || true`,
    `  mysql --protocol=socket --loose-skip-ssl -e 'SHOW SLAVE STATUS\\G' 2>/dev/null | sed -n 's/^ *\\([A-Za-z_]*\\): \\(.*\\)$/slave \\1 \\2/p'`,
    `  ${MYSQL} -e "SELECT CONCAT('userdbs ', COUNT(DISTINCT table_schema)) FROM information_schema.tables WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys','foobar_health','${FENCE.database}')"`,
    `  ${MYSQL} -e "SELECT CONCAT('vars ', @@read_only, ' ', @@server_id, ' ', IFNULL(@@gtid_binlog_pos,''), ' ', IFNULL(@@gtid_slave_pos,''))"`,
    `else echo "down"; fi`,
    `[ -s ${FENCE.marker} ] && echo "fenced $(head -c 200 ${FENCE.marker} | tr '\\n' ' ')"`,
    'true',
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
  /** The fence's accounts on this host (one per other database host's address). */
  fenceUsers?: Array<{host: string; hash: string; ssl: string}>
  /** This host's copy of the designated writer (foobar_meta.writer), if recorded. */
  writer?: {generation: number; name: string}
  /** Why this host was fenced (db promote's marker), if it was. */
  fenced?: string
  /** Semi-synchronous replication status variables (lower-cased names, e.g. rpl_semi_sync_master_status: ON). */
  semiSync?: Record<string, string>
}

export function parseDbFacts(lines: string[], replUser: string): DbFacts {
  const f: DbFacts = {up: false, users: [], slave: {}, userDatabases: 0}
  for (const line of lines) {
    const [kind, ...rest] = line.split(' ')
    if (kind === 'up') f.up = true
    else if (kind === 'user' && rest[0] === replUser)
      f.users.push({user: rest[0]!, host: rest[1]!, hash: rest[2] ?? '', ssl: rest[3] ?? ''})
    else if (kind === 'user' && rest[0] === FENCE.user)
      (f.fenceUsers ??= []).push({host: rest[1]!, hash: rest[2] ?? '', ssl: rest[3] ?? ''})
    else if (kind === 'writer' && /^\d+$/.test(rest[0] ?? '') && rest[1]) f.writer = {generation: Number(rest[0]), name: rest[1]}
    else if (kind === 'fenced') f.fenced = rest.join(' ').trim()
    else if (kind === 'semisync' && rest[0]) (f.semiSync ??= {})[rest[0]] = rest.slice(1).join(' ')
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

export type DbAction =
  | {kind: 'users'; hosts: string[]}
  | {kind: 'seed'; from: string}
  | {kind: 'configure'; from: string; why: string}
  | {kind: 'reseed'; from: string; why: string}
  | {kind: 'rejoin'; from: string; why: string}

/**
 * A replica whose history has transactions the primary never had (an old primary that committed but never got its
 * last transactions acknowledged before it died): GTID strict mode stops its replication with one of these.
 */
const DIVERGED = /out-of-order sequence number|not in the master's binlog|binlog on the master is missing the GTID/i

/** The replication error of a replica whose history diverged from its primary's (see DIVERGED), if that is its error. */
export function divergedError(slave: Record<string, string>): string | undefined {
  return [slave.Last_SQL_Error, slave.Last_IO_Error].find((e) => e && DIVERGED.test(e))?.trim()
}

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
    if (facts.userDatabases === 0 || !facts.up) return [{kind: 'seed', from: primary.name}]
    // Its own writer record names it: a writer that was away during a failover (`db promote --force`). Its binary log
    // can end with transactions the new primary never had (committed as it died, never acknowledged): known only once
    // it replicates, and then re-seeded in the same run, as a diverged replica is.
    if (facts.writer?.name === host.name)
      return [{kind: 'rejoin', from: primary.name, why: `a former writer (generation ${facts.writer.generation}) rejoining`}]
    return [{kind: 'configure', from: primary.name, why: 'not replicating'}]
  }
  const diverged = divergedError(s)
  if (s.Master_Host === primary.address && diverged) {
    // Only unacknowledged transactions can be there (semi-sync acknowledges a commit once a replica has it).
    return [{kind: 'reseed', from: primary.name, why: `diverged from ${primary.name}: ${diverged}`}]
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
    `CHANGE MASTER TO MASTER_HOST=${sqlString(primary.address)}, MASTER_PORT=${port}, MASTER_USER=${sqlString(user)}, MASTER_PASSWORD=${sqlString(password)}, MASTER_CONNECT_RETRY=5,`,
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

export type FenceAction =
  | {kind: 'fence-users'; hosts: string[]}
  | {kind: 'designate'; writer: string}
  | {kind: 'unfence'; generation: number}
  | {kind: 'fence'; why: string}

/**
 * Pure: what fencing needs on this database host. Its own fence accounts (one per other database host, not
 * replicated); on the inventory's primary the designated-writer record and lifting read-only; a writable replica
 * fenced. Refuses (throws) when the database hosts know of a promotion the inventory does not: provisioning would
 * otherwise undo it.
 */
export function planFencing(inv: Inventory, host: Host, facts: DbFacts, password: string): FenceAction[] {
  if (!facts.up) return []
  const mysql = inv.mysql!
  const actions: FenceAction[] = []
  const hash = nativePasswordHash(fencePassword(password))
  const missing = dbPeers(inv, host).filter(
    (h) => !(facts.fenceUsers ?? []).some((u) => u.host === h.address && u.hash === hash && u.ssl === 'ANY'),
  )
  if (missing.length) actions.push({kind: 'fence-users', hosts: missing.map((h) => h.address)})
  const w = facts.writer
  const fix = `update mysql.primary and mysql.replicas in ${inv.file} to match (\`db promote --write\` does), or \`foobar db promote ${mysql.primary}\` to make it the writer again`
  if (host.name === mysql.primary) {
    if (facts.fenced)
      throw new Failure(`${host.name} was fenced by a promotion (${facts.fenced}), but the inventory names it the primary: ${fix}`)
    if (w && w.name !== host.name)
      throw new Failure(
        `${host.name}'s database says ${w.name} is the writer (generation ${w.generation}), not ${host.name} as the inventory says: ${fix}`,
      )
    if (!w) actions.push({kind: 'designate', writer: host.name})
    if (!w || facts.readOnly) actions.push({kind: 'unfence', generation: w?.generation ?? 1})
  } else {
    if (w && w.name !== mysql.primary && w.name !== host.name)
      throw new Failure(
        `${host.name}'s database says ${w.name} is the writer (generation ${w.generation}), the inventory says ${mysql.primary}: ${fix}`,
      )
    if (facts.readOnly === false) actions.push({kind: 'fence', why: 'writable, but not the designated writer'})
  }
  return actions
}

/** SQL for fencing's own accounts on one host: read the writer record, nothing else; TLS required; not binlogged. */
export function fenceUsersSql(password: string, addresses: string[]): string {
  const pw = sqlString(fencePassword(password))
  return [
    'SET SESSION sql_log_bin = 0;',
    ...addresses.flatMap((a) => {
      const account = `'${FENCE.user}'@${sqlString(a)}`
      return [
        `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ${pw} REQUIRE SSL;`,
        `ALTER USER ${account} IDENTIFIED BY ${pw} REQUIRE SSL;`,
        `GRANT SELECT ON ${FENCE.database}.* TO ${account};`,
      ]
    }),
    'SET SESSION sql_log_bin = 1;',
  ].join('\n')
}

/** SQL that records the designated writer (replicated: every database host gets it). */
export function writerRecordSql(writer: string, generation: number, how: 'create' | 'set'): string {
  const row = `(1, ${generation}, ${sqlString(writer)})`
  return [
    `CREATE DATABASE IF NOT EXISTS ${FENCE.database};`,
    `CREATE TABLE IF NOT EXISTS ${FENCE.database}.writer (id TINYINT PRIMARY KEY, generation BIGINT NOT NULL, writer VARCHAR(64) NOT NULL, since TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB;`,
    how === 'create'
      ? `INSERT IGNORE INTO ${FENCE.database}.writer (id, generation, writer) VALUES ${row};`
      : `INSERT INTO ${FENCE.database}.writer (id, generation, writer) VALUES ${row} ON DUPLICATE KEY UPDATE generation = VALUES(generation), writer = VALUES(writer);`,
  ].join('\n')
}
