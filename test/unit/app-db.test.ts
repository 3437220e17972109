/*
 * The default app's database (issue 17, "the app uses the database"): mysql.app in the inventory, what the app
 * component renders for it (where it connects, the secret password file, no password anywhere else), and the
 * account planner on the database hosts (pure: facts -> actions; converged facts -> nothing) and its convergence,
 * the primary first. The SQL against a real MariaDB and the Python app itself: app-py.test.ts.
 */
import {afterEach, beforeEach, describe, expect, test} from 'vitest'
import {
  type AppDbAction,
  type AppDbFacts,
  appDbFactsScript,
  appDbSql,
  parseAppDbFacts,
  planAppDb,
  wantedPrivileges,
} from '../../src/components/app-db/account.js'
import {appDb, convergeAppDb} from '../../src/components/app-db/index.js'
import {APP_DB_PATHS, appDbTarget} from '../../src/components/app/database.js'
import {STACK, desiredState} from '../../src/components/index.js'
import {nativePasswordHash} from '../../src/components/mysql/replication.js'
import type {DesiredFile} from '../../src/engine/contract.js'
import {type Host, type Inventory, InventoryError, parseInventory} from '../../src/inventory/index.js'
import type {Runner, RunOptions, RunResult} from '../../src/remote/runner.js'
import {TEST_MATERIAL, testInventory} from './support/fake-host.js'

const ENV = 'FOOBAR_TEST_APP_DB_PASSWORD'
const PASSWORD = "app-s3cret-'quoted'\\"
const HASH = nativePasswordHash(PASSWORD)
beforeEach(() => {
  process.env[ENV] = PASSWORD
  // The database hosts' fence account derives its password from the replication secret.
  process.env.FOOBAR_TEST_REPL = 'repl-secret-for-app-db-tests'
})
afterEach(() => {
  delete process.env[ENV]
  delete process.env.FOOBAR_TEST_REPL
})

const HOSTS = ['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web db', 'web2 10.77.0.13 web db', 'web3 10.77.0.14 web']
const MYSQL = `mysql: {primary: web1, replicas: [web2], replication_password: {env: FOOBAR_TEST_REPL}, app: {password: {env: ${ENV}}}__EXTRA__}\n`
const inventory = (extra = '') => testInventory(HOSTS, {lean: true, yaml: MYSQL.replace('__EXTRA__', extra)})
const hostOf = (inv: Inventory, name: string): Host => inv.hosts.find((h) => h.name === name)!
const WEB_ADDRESSES = ['10.77.0.12', '10.77.0.13', '10.77.0.14']

describe('mysql.app in the inventory', () => {
  const FILE = '/srv/inv/app.yml'
  const text = (app: string, mysql = '') => `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
mysql:
  primary: db1
${mysql}  app: ${app}
hosts:
  - {name: web1, address: 192.0.2.10, roles: [web]}
  - {name: db1, address: 192.0.2.11, roles: [db]}
`
  function problems(t: string) {
    try {
      parseInventory(t, FILE)
    } catch (error) {
      expect(error).toBeInstanceOf(InventoryError)
      return (error as InventoryError).problems.map((p) => `${p.field}: ${p.message}`)
    }
    throw new Error('expected the inventory to be rejected')
  }

  test('defaults: user foobar_app, database foobar_app; the password is a secret reference, resolved next to the file', () => {
    const inv = parseInventory(text('{password: {file: secrets/app}}'), FILE)
    expect(inv.mysql?.app).toEqual({user: 'foobar_app', password: {file: '/srv/inv/secrets/app'}, database: 'foobar_app'})
    const own = parseInventory(text('{user: notes_rw, database: notes, password: {env: APP_PW}}'), FILE)
    expect(own.mysql?.app).toEqual({user: 'notes_rw', password: {env: 'APP_PW'}, database: 'notes'})
    expect(parseInventory(text('{password: {env: X}}').replace('  app: {password: {env: X}}\n', ''), FILE).mysql?.app).toBeUndefined()
  })

  test('the password is required, and only as a reference', () => {
    expect(problems(text('{user: notes_rw}'))).toEqual(['mysql.app.password: is required: a secret reference, {env: NAME} or {file: PATH}'])
    expect(problems(text('{password: hunter2}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.password: must be a secret reference: \{env: NAME\} or \{file: PATH\}/),
    ])
  })

  test('a bad user name or database name names the field', () => {
    expect(problems(text('{user: App-User, password: {env: X}}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.user: must be a MySQL user name \(a-z, 0-9, _\)/),
    ])
    expect(problems(text('{user: root, password: {env: X}}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.user: must be the app's own user/),
    ])
    expect(problems(text('{database: "notes; DROP DATABASE x", password: {env: X}}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.database: must be a database name/),
    ])
    expect(problems(text('{database: 1notes, password: {env: X}}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.database: must be a database name/),
    ])
    expect(problems(text('{database: mysql, password: {env: X}}'))).toEqual([
      expect.stringMatching(/^mysql\.app\.database: must not be one of the server's own/),
    ])
    expect(problems(text('{unknown: 1, password: {env: X}}'))).toEqual([expect.stringMatching(/^mysql\.app\.unknown: /)])
  })

  test("the app's user is not the replication user; the app database needs a primary", () => {
    expect(problems(text('{user: repl, password: {env: X}}'))).toEqual([
      'mysql.app.user: "repl" is the replication user: give the app a user of its own',
    ])
    const noPrimary = text('{password: {env: X}}').replace('  primary: db1\n', '').replace('roles: [db]', 'roles: [web]')
    expect(problems(noPrimary)).toContain('mysql.app: the app database needs a primary: set mysql.primary')
  })
})

describe('what the app component renders for mysql.app', () => {
  const appFiles = (inv: Inventory, host: string, material = true) =>
    desiredState(inv, hostOf(inv, host), material ? {material: TEST_MATERIAL} : {}).files.filter((f) => f.component === 'app')
  const content = (files: DesiredFile[], path: string) => files.find((f) => f.path === path)!.content
  const APP = '/opt/foobar-app/app.py'
  const UNIT = '/etc/systemd/system/foobar-app.service'

  test("without mysql.endpoint: the primary's address and mysql.port, its name verified", () => {
    const inv = inventory(', port: 3307')
    expect(appDbTarget(inv)).toMatchObject({host: '10.77.0.12', port: 3307, verifyName: true, via: 'primary'})
    const app = content(appFiles(inv, 'web3'), APP)
    expect(app).toContain('DB_HOST = "10.77.0.12"\nDB_PORT = 3307\nDB_USER = "foobar_app"\nDB_NAME = "foobar_app"\n')
    expect(app).toContain('DB_VERIFY_NAME = True\n')
  })

  test("with mysql.endpoint: 127.0.0.1 and the endpoint's port, the chain verified (the writer's name is not known)", () => {
    const inv = inventory(', endpoint: {port: 3310}')
    const app = content(appFiles(inv, 'web3'), APP)
    expect(app).toContain('DB_HOST = "127.0.0.1"\nDB_PORT = 3310\n')
    expect(app).toContain('DB_VERIFY_NAME = False\n')
    expect(app).not.toContain('10.77.0.12')
  })

  test('the password: a 0600 root file marked secret, handed over by systemd; in no other file, the packages, the CA', () => {
    const inv = inventory()
    for (const host of ['web1', 'web3']) {
      const d = desiredState(inv, hostOf(inv, host), {material: TEST_MATERIAL})
      const secret = d.files.find((f) => f.path === APP_DB_PATHS.password)!
      expect(secret).toMatchObject({
        mode: 0o600,
        owner: 'root',
        group: 'root',
        secret: true,
        content: `${PASSWORD}\n`,
        notify: ['foobar-app'],
      })
      const leaks = d.files.filter((f) => !f.secret && f.content.includes(PASSWORD)).map((f) => f.path)
      expect(leaks).toEqual([])
      // The internal CA on every web server (web3 is not a database host: no other copy there).
      expect(d.files.find((f) => f.path === APP_DB_PATHS.ca)).toMatchObject({content: TEST_MATERIAL.internalCa, mode: 0o644})
      expect(d.packages).toContain('python3-pymysql')
      const unit = content(d.files, UNIT)
      expect(unit).toContain(`LoadCredential=db-password:${APP_DB_PATHS.password}\n`)
      expect(unit).toContain(`LoadCredential=db-ca:${APP_DB_PATHS.ca}\n`)
      expect(unit).toContain('DynamicUser=yes\n')
    }
    // `foobar render` (no key material): the secret is not read, and render leaves secret files out.
    delete process.env[ENV]
    const rendered = desiredState(inv, hostOf(inv, 'web3')).files
    expect(rendered.filter((f) => f.content.includes(PASSWORD))).toEqual([])
    expect(rendered.find((f) => f.path === APP_DB_PATHS.password)?.secret).toBe(true)
  })

  test('without mysql.app: no database code, no pymysql, and the password and CA files are removed', () => {
    const inv = testInventory(HOSTS, {lean: true, yaml: 'mysql: {primary: web1, replicas: [web2], replication_password: {env: X}}\n'})
    const d = desiredState(inv, hostOf(inv, 'web3'), {material: TEST_MATERIAL})
    expect(content(d.files, APP)).not.toMatch(/pymysql|readyz|notes/)
    expect(content(d.files, UNIT)).not.toContain('LoadCredential')
    expect(d.packages).not.toContain('python3-pymysql')
    expect(d.absent).toEqual(expect.arrayContaining([APP_DB_PATHS.password, APP_DB_PATHS.ca]))
    expect(appDb.appliesTo(hostOf(inv, 'web1'), inv)).toBe(false)
  })

  test('the app-db component: on the database hosts only, after replication, without draining web servers', () => {
    const inv = inventory()
    expect(inv.hosts.filter((h) => appDb.appliesTo(h, inv)).map((h) => h.name)).toEqual(['web1', 'web2'])
    const names = STACK.components.map((c) => c.name)
    expect(names.indexOf('app-db')).toBeGreaterThan(names.indexOf('replication'))
    expect(appDb.rolling).toBe('none')
  })
})

/* ---- The account planner ---- */

const CONVERGED = (over: Partial<AppDbFacts> = {}): AppDbFacts => ({
  up: true,
  readOnly: false,
  schema: true,
  table: true,
  accounts: WEB_ADDRESSES.map((host) => ({host, hash: HASH, ssl: 'ANY'})),
  privileges: Object.fromEntries(WEB_ADDRESSES.map((a) => [a, wantedPrivileges('foobar_app')])),
  ...over,
})

describe('the account planner (pure)', () => {
  const inv = inventory()
  const [web1, web2] = [hostOf(inv, 'web1'), hostOf(inv, 'web2')]
  const plan = (h: Host, f: AppDbFacts) => planAppDb(inv, h, f, PASSWORD)

  test('a new primary (mysqld not even installed yet): database and table, an account per web server, their grants', () => {
    expect(plan(web1, {up: false, schema: false, table: false, accounts: [], privileges: {}})).toEqual([
      {kind: 'schema', database: 'foobar_app', table: true},
      {kind: 'accounts', hosts: WEB_ADDRESSES},
      {kind: 'grants', hosts: WEB_ADDRESSES},
    ])
  })

  test('converged: nothing, on the primary and on a replica (a second run is empty)', () => {
    expect(plan(web1, CONVERGED())).toEqual([])
    expect(plan(web2, CONVERGED({readOnly: true}))).toEqual([])
  })

  test('a changed password or an account without TLS is altered; a missing table is made', () => {
    const accounts = CONVERGED().accounts.map((a, i) => (i === 0 ? {...a, hash: nativePasswordHash('old')} : i === 1 ? {...a, ssl: ''} : a))
    expect(plan(web1, CONVERGED({accounts, table: false}))).toEqual([
      {kind: 'schema', database: 'foobar_app', table: true},
      {kind: 'accounts', hosts: ['10.77.0.12', '10.77.0.13']},
    ])
  })

  test('any privilege beyond SELECT and INSERT on the table (or one missing) means its grants are set again', () => {
    const privileges = CONVERGED().privileges
    privileges['10.77.0.13'] = [...wantedPrivileges('foobar_app'), 'foobar_app.notes DELETE']
    privileges['10.77.0.14'] = ['foobar_app.notes SELECT']
    expect(plan(web1, CONVERGED({privileges}))).toEqual([{kind: 'grants', hosts: ['10.77.0.13', '10.77.0.14']}])
    const global = {...CONVERGED().privileges, '10.77.0.12': [...wantedPrivileges('foobar_app'), '* GRANT OPTION']}
    expect(plan(web1, CONVERGED({privileges: global}))).toEqual([{kind: 'grants', hosts: ['10.77.0.12']}])
  })

  test("accounts of the app's user at addresses that are no longer web servers are dropped, never a localhost one", () => {
    const accounts = [...CONVERGED().accounts, {host: '10.77.0.99', hash: HASH, ssl: 'ANY'}, {host: 'localhost', hash: '', ssl: ''}]
    expect(plan(web1, CONVERGED({accounts}))).toEqual([{kind: 'drop', hosts: ['10.77.0.99']}])
  })

  test('a read-only designated primary is not the writer: nothing is changed there, and the plan says why', () => {
    expect(plan(web1, CONVERGED({readOnly: true, accounts: []}))).toEqual([{kind: 'read-only'}])
    // Nothing to change there: nothing to say either (a promotion the inventory does not know yet is db status's).
    expect(plan(web1, CONVERGED({readOnly: true}))).toEqual([])
  })

  test('a replica gets its accounts (a dump does not carry them) but no database, and grants only once the table is there', () => {
    expect(plan(web2, {up: true, readOnly: true, schema: false, table: false, accounts: [], privileges: {}})).toEqual([
      {kind: 'accounts', hosts: WEB_ADDRESSES},
    ])
    expect(plan(web2, CONVERGED({readOnly: true, accounts: [], privileges: {}}))).toEqual([
      {kind: 'accounts', hosts: WEB_ADDRESSES},
      {kind: 'grants', hosts: WEB_ADDRESSES},
    ])
  })

  test('the facts: tab-separated lines, USAGE left out, a grantable privilege shows as GRANT OPTION', () => {
    const f = parseAppDbFacts([
      'up',
      'ro\t0',
      'schema\t1',
      'table\t1',
      `account\t10.77.0.12\t${HASH}\tANY`,
      'account\t10.77.0.13\t\t',
      'priv\t10.77.0.12\t*\tUSAGE\tNO',
      'priv\t10.77.0.12\tfoobar_app.notes\tSELECT\tNO',
      'priv\t10.77.0.12\tfoobar_app.notes\tINSERT\tNO',
      'priv\t10.77.0.13\t*\tPROCESS\tYES',
      'priv\t10.77.0.13\tother db\tLOCK TABLES\tNO',
    ])
    expect(f).toEqual({
      up: true,
      readOnly: false,
      schema: true,
      table: true,
      accounts: [
        {host: '10.77.0.12', hash: HASH, ssl: 'ANY'},
        {host: '10.77.0.13', hash: '', ssl: ''},
      ],
      privileges: {'10.77.0.12': wantedPrivileges('foobar_app'), '10.77.0.13': ['* GRANT OPTION', '* PROCESS', 'other db LOCK TABLES']},
    })
    expect(parseAppDbFacts(['down'])).toMatchObject({up: false, accounts: []})
  })

  test('the facts script never holds the password; the SQL quotes it and holds nothing but the account, the table and the grants', () => {
    expect(appDbFactsScript({user: 'foobar_app', database: 'foobar_app'})).not.toContain(PASSWORD)
    const actions: AppDbAction[] = [
      {kind: 'schema', database: 'foobar_app', table: true},
      {kind: 'accounts', hosts: ['10.77.0.12']},
      {kind: 'grants', hosts: ['10.77.0.12']},
      {kind: 'drop', hosts: ['10.77.0.99']},
    ]
    const sql = appDbSql(actions, {user: 'foobar_app', database: 'foobar_app'}, PASSWORD, false)
    expect(sql.split('\n')).toEqual([
      'CREATE DATABASE IF NOT EXISTS `foobar_app` DEFAULT CHARACTER SET utf8mb4;',
      'CREATE TABLE IF NOT EXISTS `foobar_app`.`notes` (id BIGINT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200), host VARCHAR(64), created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;',
      "CREATE USER IF NOT EXISTS 'foobar_app'@'10.77.0.12' IDENTIFIED BY 'app-s3cret-''quoted''\\\\' REQUIRE SSL;",
      "ALTER USER 'foobar_app'@'10.77.0.12' IDENTIFIED BY 'app-s3cret-''quoted''\\\\' REQUIRE SSL;",
      "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'foobar_app'@'10.77.0.12';",
      "GRANT SELECT, INSERT ON `foobar_app`.`notes` TO 'foobar_app'@'10.77.0.12';",
      "DROP USER IF EXISTS 'foobar_app'@'10.77.0.99';",
    ])
    expect(appDbSql(actions.slice(1, 2), {user: 'foobar_app', database: 'foobar_app'}, PASSWORD, true)).toMatch(
      /^SET SESSION sql_log_bin = 0;\n/,
    )
  })

  test('the live planner reads the secret before anything is touched, and shows no secret in the plan', () => {
    const planner = appDb.live!.prepare(inv)!
    const ctx = {inventory: inv, host: web1, ports: [], files: [], virt: 'none', notified: new Set<string>(), pending: []}
    const actions = planner.plan(ctx, ['down'])
    expect(actions.map((a) => a.summary)).toEqual([
      'app database foobar_app with table notes',
      'app account foobar_app for 10.77.0.12, 10.77.0.13, 10.77.0.14 (TLS required)',
      'app account foobar_app: SELECT, INSERT on foobar_app.notes only, for 10.77.0.12, 10.77.0.13, 10.77.0.14',
    ])
    expect(JSON.stringify(actions)).not.toContain(PASSWORD)
    expect(actions.every((a) => a.apply === undefined)).toBe(true)
    delete process.env[ENV]
    expect(() => appDb.live!.prepare(inv)).toThrow(/mysql\.app\.password: environment variable FOOBAR_TEST_APP_DB_PASSWORD is not set/)
  })
})

/* ---- Convergence through scripted database hosts ---- */

/** A database host answering the facts script from `facts`, recording the SQL it is sent (stdin only). */
function scripted(host: Host, facts: AppDbFacts, gtid: {binlog?: string; slave?: string[]} = {}) {
  const sql: string[] = []
  const scripts: string[] = []
  const slave = [...(gtid.slave ?? [])]
  const runner = {
    host,
    async run(script: string, o: RunOptions = {}): Promise<RunResult> {
      scripts.push(script)
      const ok = (stdout = ''): RunResult => ({code: 0, stdout, stderr: ''})
      if (script.includes('mysqladmin --loose-skip-ssl --connect-timeout=3 ping')) {
        const f = facts
        return ok(
          [
            f.up ? 'up' : 'down',
            `ro\t${f.readOnly ? 1 : 0}`,
            `schema\t${f.schema ? 1 : 0}`,
            `table\t${f.table ? 1 : 0}`,
            ...f.accounts.map((a) => `account\t${a.host}\t${a.hash}\t${a.ssl}`),
            ...Object.entries(f.privileges).flatMap(([h, ps]) => ps.map((p) => `priv\t${h}\t${p.replace(' ', '\t')}\tNO`)),
          ].join('\n'),
        )
      }
      if (script.includes('@@gtid_binlog_pos')) return ok(`${gtid.binlog ?? ''}\n`)
      if (script.includes('@@gtid_slave_pos')) return ok(`${slave.length > 1 ? slave.shift() : (slave[0] ?? '')}\n`)
      if (o.stdin !== undefined) {
        sql.push(o.stdin)
        // What the SQL did, as the next facts read sees it.
        Object.assign(facts, CONVERGED({readOnly: facts.readOnly, table: facts.table || o.stdin.includes('CREATE TABLE')}))
        return ok()
      }
      return {code: 1, stdout: '', stderr: `not scripted: ${script}`}
    },
  }
  return {runner: runner as unknown as Runner, sql, scripts}
}

describe('convergeAppDb (the primary first, replicas once they caught up)', () => {
  const inv = inventory()
  const [web1, web2] = [hostOf(inv, 'web1'), hostOf(inv, 'web2')]

  test('the primary makes everything; the replica, caught up, needs nothing; the password only ever on stdin', async () => {
    const primary = scripted(
      web1,
      {up: true, readOnly: false, schema: false, table: false, accounts: [], privileges: {}},
      {binlog: '0-1-7'},
    )
    const replica = scripted(web2, CONVERGED({readOnly: true}), {slave: ['0-1-5', '0-1-7']})
    const steps: string[] = []
    const byName: Record<string, Runner> = {web1: primary.runner, web2: replica.runner}
    const failed = await convergeAppDb(
      inv,
      [web2, web1],
      async (h) => byName[h.name]!,
      PASSWORD,
      (h, s) => steps.push(`${h}: ${s}`),
    )
    expect(failed).toEqual({})
    expect(steps).toEqual([
      'web1: app database foobar_app with table notes',
      'web1: app account foobar_app for 10.77.0.12, 10.77.0.13, 10.77.0.14 (TLS required)',
      'web1: app account foobar_app: SELECT, INSERT on foobar_app.notes only, for 10.77.0.12, 10.77.0.13, 10.77.0.14',
    ])
    expect(primary.sql).toHaveLength(1)
    expect(primary.sql[0]).not.toContain('sql_log_bin')
    expect(replica.sql).toEqual([])
    // It waited for the replica to reach the primary's position (asked twice) before reading its facts.
    expect(replica.scripts.filter((s) => s.includes('@@gtid_slave_pos'))).toHaveLength(2)
    for (const s of [...primary.scripts, ...replica.scripts]) expect(s).not.toContain(PASSWORD)
  })

  test('a replica without the accounts (seeded from a dump) gets them, outside its binlog', async () => {
    const primary = scripted(web1, CONVERGED(), {binlog: '0-1-7'})
    const replica = scripted(web2, CONVERGED({readOnly: true, accounts: [], privileges: {}}), {slave: ['0-1-7']})
    const failed = await convergeAppDb(
      inv,
      [web1, web2],
      async (h) => (h === web1 ? primary.runner : replica.runner),
      PASSWORD,
      () => {},
    )
    expect(failed).toEqual({})
    expect(primary.sql).toEqual([])
    expect(replica.sql).toHaveLength(1)
    expect(replica.sql[0]).toMatch(/^SET SESSION sql_log_bin = 0;\nCREATE USER IF NOT EXISTS 'foobar_app'@'10\.77\.0\.12'/)
    expect(replica.sql[0]).not.toContain('CREATE DATABASE')
  })

  test('a read-only primary fails with the reason and is not written to', async () => {
    const primary = scripted(web1, CONVERGED({readOnly: true, accounts: []}))
    const failed = await convergeAppDb(
      inv,
      [web1],
      async () => primary.runner,
      PASSWORD,
      () => {},
    )
    expect(failed.web1).toMatch(/^web1 is read-only: not the writer/)
    expect(primary.sql).toEqual([])
  })
})
