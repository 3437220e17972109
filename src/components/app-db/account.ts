import type {Host, Inventory} from '../../inventory/index.js'
import {sqlString} from '../../secrets/index.js'
import {shq} from '../../util/shell.js'
import {nativePasswordHash} from '../mysql/replication.js'

/*
 * The default app's database and least-privilege account, as facts (one shell snippet, run as root over the
 * database's socket), a pure comparison, and the SQL that converges it. The password only ever travels on mysql's
 * stdin and is compared by its hash.
 *
 * On the primary: the database, the `notes` table, and for every web server's address an account that must use
 * TLS and may SELECT and INSERT on that one table, nothing else; accounts of that user for addresses that are no
 * longer web servers are dropped. All of it replicates. On a replica only the accounts are checked: a replica
 * seeded by a dump (user databases only) has none, and it needs them the day it is promoted. There they are made
 * with sql_log_bin off, like every host's own accounts, so nothing is written that the primary does not have.
 */

export interface AppDbSettings {
  user: string
  database: string
}

/** The web servers' addresses: where the app connects from (directly, or through the endpoint's HAProxy). */
export const appClients = (inv: Inventory): string[] => inv.hosts.filter((h) => h.roles.includes('web')).map((h) => h.address)

export const TABLE = 'notes'

/** The one table, as the app uses it (ids are what the write-loss tests count). */
export const tableSql = (db: string) =>
  `CREATE TABLE IF NOT EXISTS \`${db}\`.\`${TABLE}\` (id BIGINT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200), host VARCHAR(64), ` +
  `created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;`

/** The privileges the app has, and the only ones: `<db>.notes SELECT` and `<db>.notes INSERT`. */
export const wantedPrivileges = (db: string) => [`${db}.${TABLE} INSERT`, `${db}.${TABLE} SELECT`]

const SOCKET = 'mysql --protocol=socket --loose-skip-ssl -N -B'

/** Read-only: up or down, read_only, whether the database and table exist, the user's accounts and privileges. */
export function appDbFactsScript(s: AppDbSettings): string {
  // Every grantee of the user, its host unquoted; the privilege's scope (* global, db, db.table, db.table.column).
  const grantee = `SUBSTRING_INDEX(GRANTEE, '@', 1) = ${sqlString(`'${s.user}'`)}`
  const host = `TRIM(BOTH '''' FROM SUBSTRING_INDEX(GRANTEE, '@', -1))`
  const sql = [
    `SELECT 'ro', @@read_only;`,
    `SELECT 'schema', COUNT(*) FROM information_schema.schemata WHERE schema_name = ${sqlString(s.database)};`,
    `SELECT 'table', COUNT(*) FROM information_schema.tables WHERE table_schema = ${sqlString(s.database)} AND table_name = '${TABLE}';`,
    `SELECT 'account', Host, Password, ssl_type FROM mysql.user WHERE User = ${sqlString(s.user)};`,
    `SELECT 'priv', ${host}, '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE ${grantee};`,
    `SELECT 'priv', ${host}, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES WHERE ${grantee};`,
    `SELECT 'priv', ${host}, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES WHERE ${grantee};`,
    `SELECT 'priv', ${host}, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME), PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.COLUMN_PRIVILEGES WHERE ${grantee};`,
  ].join(' ')
  return [
    `if command -v mysql >/dev/null 2>&1 && mysqladmin --loose-skip-ssl --connect-timeout=3 ping >/dev/null 2>&1; then`,
    `  echo up`,
    // Tab-separated columns (mysql -B escapes tabs inside values): a value cannot pose as another column.
    `  ${SOCKET} -e ${shq(sql)} || echo 'error'`,
    `else echo down; fi`,
  ].join('\n')
}

export interface AppDbFacts {
  up: boolean
  /** The facts query failed (e.g. a permission or version problem): nothing is known. */
  error?: boolean
  readOnly?: boolean
  schema: boolean
  table: boolean
  accounts: Array<{host: string; hash: string; ssl: string}>
  /** `host` -> its privileges as `scope PRIVILEGE` (`GRANT OPTION` for a grantable one), USAGE left out. */
  privileges: Record<string, string[]>
}

export function parseAppDbFacts(lines: string[]): AppDbFacts {
  const f: AppDbFacts = {up: false, schema: false, table: false, accounts: [], privileges: {}}
  for (const line of lines) {
    const [kind, ...rest] = line.split('\t')
    if (kind === 'up') f.up = true
    else if (kind === 'error') f.error = true
    else if (kind === 'ro') f.readOnly = rest[0] === '1' || rest[0] === 'ON'
    else if (kind === 'schema') f.schema = Number(rest[0]) > 0
    else if (kind === 'table') f.table = Number(rest[0]) > 0
    else if (kind === 'account') f.accounts.push({host: rest[0] ?? '', hash: rest[1] ?? '', ssl: rest[2] ?? ''})
    else if (kind === 'priv') {
      const [host = '', scope = '', privilege = '', grantable = ''] = rest
      const list = (f.privileges[host] ??= [])
      if (privilege !== 'USAGE') list.push(`${scope} ${privilege}`)
      if (grantable === 'YES' && !list.includes(`${scope} GRANT OPTION`)) list.push(`${scope} GRANT OPTION`)
    }
  }
  for (const host of Object.keys(f.privileges)) f.privileges[host] = [...new Set(f.privileges[host])].sort()
  return f
}

export type AppDbAction =
  | {kind: 'read-only'}
  | {kind: 'schema'; database: string; table: boolean}
  | {kind: 'accounts'; hosts: string[]}
  | {kind: 'grants'; hosts: string[]}
  | {kind: 'drop'; hosts: string[]}

/**
 * Pure: what this database host needs. On the primary everything; on a replica only the accounts and their
 * privileges (the database and table come from the primary). A second run against converged facts plans nothing.
 */
export function planAppDb(inv: Inventory, host: Host, facts: AppDbFacts, password: string): AppDbAction[] {
  const app = inv.mysql!.app!
  const primary = host.db?.role === 'primary'
  const actions: AppDbAction[] = []
  const tableThere = facts.up && facts.table
  if (primary && !(facts.up && facts.schema && facts.table)) actions.push({kind: 'schema', database: app.database, table: !tableThere})
  const want = appClients(inv)
  const hash = nativePasswordHash(password)
  const accounts = want.filter((a) => !facts.accounts.some((x) => x.host === a && x.hash === hash && x.ssl === 'ANY'))
  if (accounts.length) actions.push({kind: 'accounts', hosts: accounts})
  const wanted = wantedPrivileges(app.database).join(',')
  const grants = want.filter((a) => (facts.privileges[a] ?? []).join(',') !== wanted)
  // A replica without the table yet (not replicated so far) cannot take a table grant: the next run does it.
  if (grants.length && (primary || tableThere)) actions.push({kind: 'grants', hosts: grants})
  // Only accounts of the app's own user at an address: never a localhost or wildcard account someone else made.
  const stale = facts.accounts.map((x) => x.host).filter((h) => !want.includes(h) && /^[0-9a-f.:]+$/i.test(h) && /[.:]/.test(h))
  if (stale.length) actions.push({kind: 'drop', hosts: [...new Set(stale)]})
  // The designated primary that is read-only is not the writer (promoted since the inventory was written, or
  // fenced): writing there would make transactions the writer does not have. Nothing to do is still nothing.
  if (primary && actions.length && facts.up && facts.readOnly) return [{kind: 'read-only'}]
  return actions
}

export function describeAppDb(a: AppDbAction, s: AppDbSettings, host: Host): string {
  switch (a.kind) {
    case 'read-only':
      return `${host.name} is read-only: not the writer, so the app's database is not changed here (is mysql.primary still the writer? see foobar db status)`
    case 'schema':
      return `app database ${s.database}${a.table ? ` with table ${TABLE}` : ''}`
    case 'accounts':
      return `app account ${s.user} for ${a.hosts.join(', ')} (TLS required)`
    case 'grants':
      return `app account ${s.user}: SELECT, INSERT on ${s.database}.${TABLE} only, for ${a.hosts.join(', ')}`
    case 'drop':
      return `drop app account ${s.user} for ${a.hosts.join(', ')} (no longer web servers)`
  }
}

/** The SQL that carries out the actions (fed to mysql on stdin: it holds the password). */
export function appDbSql(actions: AppDbAction[], s: AppDbSettings, password: string, replica: boolean): string {
  const account = (h: string) => `${sqlString(s.user)}@${sqlString(h)}`
  // A replica's own accounts are not written to its binlog (it has no transactions of its own).
  const out: string[] = replica ? ['SET SESSION sql_log_bin = 0;'] : []
  for (const a of actions) {
    if (a.kind === 'schema')
      out.push(`CREATE DATABASE IF NOT EXISTS \`${s.database}\` DEFAULT CHARACTER SET utf8mb4;`, tableSql(s.database))
    else if (a.kind === 'accounts')
      for (const h of a.hosts)
        out.push(
          `CREATE USER IF NOT EXISTS ${account(h)} IDENTIFIED BY ${sqlString(password)} REQUIRE SSL;`,
          `ALTER USER ${account(h)} IDENTIFIED BY ${sqlString(password)} REQUIRE SSL;`,
        )
    else if (a.kind === 'grants')
      for (const h of a.hosts)
        out.push(
          `REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${account(h)};`,
          `GRANT SELECT, INSERT ON \`${s.database}\`.\`${TABLE}\` TO ${account(h)};`,
        )
    else if (a.kind === 'drop') for (const h of a.hosts) out.push(`DROP USER IF EXISTS ${account(h)};`)
  }
  return out.join('\n')
}
