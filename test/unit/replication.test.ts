/*
 * Database replication: the facts script (run for real against stubbed mysql clients), the pure plan (a running
 * replica is never re-seeded or reset), convergence and `db promote` through scripted database hosts, and the GTID
 * coverage proof behind promote.
 */
import {afterAll, afterEach, beforeEach, describe, expect, test} from 'vitest'
import {Failure} from '../../src/util/errors.js'
import {
  LIST_DATABASES,
  MYSQL,
  type DbFacts,
  dbFactsScript,
  dbFactsScriptPerQuery,
  nativePasswordHash,
  parseDbFacts,
  planReplication,
} from '../../src/components/mysql/replication.js'
import {convergeReplication, gtidCovers, noReplicaWaitScript, promote} from '../../src/components/mysql/replicate.js'
import {fencePassword} from '../../src/components/mysql/fence.js'
import {heartbeatSql, replicaWriteVerdict} from '../../src/components/mysql/checks.js'
import type {Host} from '../../src/inventory/index.js'
import {type Command, FakeHost, fastTimers, testInventory} from './support/fake-host.js'

const PASSWORD = 'repl-secret-1'
const HASH = nativePasswordHash(PASSWORD)
const FENCE_HASH = nativePasswordHash(fencePassword(PASSWORD))
const inv = testInventory(['web1 10.77.0.12 web db', 'web2 10.77.0.13 web db', 'web3 10.77.0.14 web db'], {
  yaml: 'mysql: {engine: mariadb, primary: web1, replicas: [web2, web3], replication_user: repl, replication_password: {env: FOOBAR_TEST_REPL_PASSWORD}}\n',
})
const host = (name: string) => inv.hosts.find((h) => h.name === name)!
const [web1, web2, web3] = ['web1', 'web2', 'web3'].map(host) as [Host, Host, Host]

const fakes: FakeHost[] = []
afterAll(() => fakes.forEach((f) => f.cleanup()))

/** A healthy replica of web1, as SHOW SLAVE STATUS describes it. */
const RUNNING: Record<string, string> = {
  Master_Host: web1.address,
  Slave_IO_Running: 'Yes',
  Slave_SQL_Running: 'Yes',
  Using_Gtid: 'Slave_Pos',
  Master_SSL_Allowed: 'Yes',
  Last_IO_Error: '',
  Last_SQL_Error: '',
  Seconds_Behind_Master: '0',
}
const facts = (f: Partial<DbFacts>): DbFacts => ({up: true, users: [], slave: {}, userDatabases: 0, ...f})

describe('the database facts script, run for real', () => {
  function dbHost(mysql: string | undefined, up = true): FakeHost {
    const f = new FakeHost(web2)
    fakes.push(f)
    if (mysql !== undefined) {
      f.command('mysqladmin', up ? 'exit 0' : 'echo "mysqladmin: connect to server at \'localhost\' failed" >&2; exit 1')
      f.command('mysql', mysql)
    }
    return f
  }
  const read = async (f: FakeHost) => parseDbFacts((await f.run(dbFactsScript('repl'))).stdout.split('\n').filter(Boolean), 'repl')

  test("a running replica: SHOW SLAVE STATUS\\G's fields (empty ones too), the replication users, user databases, GTID positions", async () => {
    const status = [
      '*************************** 1. row ***************************',
      '                Slave_IO_State: Waiting for master to send event',
      `                   Master_Host: ${web1.address}`,
      '              Slave_IO_Running: Yes',
      '             Slave_SQL_Running: Yes',
      '                 Last_IO_Error: ',
      '                Last_SQL_Error: ',
      '            Master_SSL_Allowed: Yes',
      '         Seconds_Behind_Master: 0',
      '                    Using_Gtid: Slave_Pos',
      '                   Gtid_IO_Pos: 0-1-100,1-2-7',
    ]
    const f = dbHost(
      // Each query asked for, in the order asked (one client per query, or all in one); with column names (no -N),
      // batch mode puts a header line before each result, as the real client does. The fence's table does not exist
      // yet: as MariaDB 10.11's client does, a failing query ends the client's run when the queries are given with
      // -e, whatever --force says; read from its standard input, --force goes on to the next query.
      [
        'o="$*"; case " $o " in *" -e "*) q=$o; e=1 ;; *) q=$(cat); e= ;; esac',
        'h() { case "$o" in *-N*) ;; *) echo fb ;; esac; }',
        `case "$q" in *"CONCAT('user '"*) h; echo "user repl ${web1.address} ${HASH} ANY"; echo "user repl ${web3.address} ${HASH} ANY"; echo "user other 10.0.0.1 *X ANY" ;; esac`,
        `case "$q" in *"writer"*) echo "ERROR 1146 (42S02): Table 'foobar_meta.writer' doesn't exist" >&2; case "$o" in *--force*) [ -z "$e" ] || exit 1 ;; *) exit 1 ;; esac ;; esac`,
        `case "$q" in *"SHOW SLAVE STATUS"*) printf '%s\\n' ${status.map((l) => `'${l}'`).join(' ')} ;; esac`,
        `case "$q" in *"CONCAT('userdbs '"*) h; echo "userdbs 2" ;; esac`,
        `case "$q" in *"CONCAT('vars '"*) h; echo "vars 1 2 0-2-5 0-1-100,1-2-7" ;; esac`,
      ].join('\n'),
    )
    const got = await read(f)
    expect(got).toEqual({
      up: true,
      users: [
        {user: 'repl', host: web1.address, hash: HASH, ssl: 'ANY'},
        {user: 'repl', host: web3.address, hash: HASH, ssl: 'ANY'},
      ],
      slave: {...RUNNING, Slave_IO_State: 'Waiting for master to send event', Gtid_IO_Pos: '0-1-100,1-2-7'},
      userDatabases: 2,
      readOnly: true,
      serverId: 2,
      gtidBinlogPos: '0-2-5',
      gtidSlavePos: '0-1-100,1-2-7',
    })
    expect(planReplication(inv, web2, got, PASSWORD)).toEqual([])
    // One client for all the queries; the per-query form it replaced reads the same.
    const perQuery = parseDbFacts((await f.run(dbFactsScriptPerQuery('repl'))).stdout.split('\n').filter(Boolean), 'repl')
    expect(got).toEqual(perQuery)
  })

  test('no database server installed, or one that does not answer: down', async () => {
    expect(await read(dbHost(undefined))).toEqual({up: false, users: [], slave: {}, userDatabases: 0})
    expect((await read(dbHost('exit 0', false))).up).toBe(false)
  })
})

describe('planReplication (pure)', () => {
  test('a running replica plans nothing, whatever it holds', () => {
    expect(planReplication(inv, web2, facts({slave: RUNNING}), PASSWORD)).toEqual([])
    expect(planReplication(inv, web2, facts({slave: RUNNING, userDatabases: 12}), PASSWORD)).toEqual([])
  })

  test('a replica with databases of its own that does not replicate is configured, never seeded', () => {
    expect(planReplication(inv, web2, facts({userDatabases: 3}), PASSWORD)).toEqual([
      {kind: 'configure', from: 'web1', why: 'not replicating'},
    ])
  })

  test('an empty new replica (or one whose server is not up yet) is seeded from the primary', () => {
    expect(planReplication(inv, web2, facts({}), PASSWORD)).toEqual([{kind: 'seed', from: 'web1'}])
    expect(planReplication(inv, web2, facts({up: false}), PASSWORD)).toEqual([{kind: 'seed', from: 'web1'}])
  })

  test('a replica that was configured once is repaired in place, never re-seeded, even when it is empty', () => {
    const broken = {...RUNNING, Slave_IO_Running: 'Connecting', Last_IO_Error: "error connecting to master 'repl@10.77.0.12:3306'"}
    expect(planReplication(inv, web2, facts({slave: broken}), PASSWORD)).toEqual([
      {kind: 'configure', from: 'web1', why: "IO thread Connecting: error connecting to master 'repl@10.77.0.12:3306'"},
    ])
    const stopped = {...RUNNING, Slave_IO_Running: 'No', Slave_SQL_Running: 'No'}
    expect(planReplication(inv, web2, facts({slave: stopped, userDatabases: 0}), PASSWORD)).toEqual([
      {kind: 'configure', from: 'web1', why: 'IO thread No; SQL thread No'},
    ])
  })

  test('a replica whose history diverged (an old primary with unacknowledged transactions) is re-seeded, saying why', () => {
    const sqlError =
      'An attempt was made to binlog GTID 0-3-105 which would create an out-of-order sequence number with existing GTID 0-2-105, and gtid strict mode is enabled'
    expect(planReplication(inv, web2, facts({slave: {...RUNNING, Slave_SQL_Running: 'No', Last_SQL_Error: sqlError}}), PASSWORD)).toEqual([
      {kind: 'reseed', from: 'web1', why: `diverged from web1: ${sqlError}`},
    ])
    const ioError =
      "Got fatal error 1236 from master when reading data from binary log: 'Error: connecting slave requested to start from GTID 0-2-105, which is not in the master's binlog'"
    expect(
      planReplication(inv, web2, facts({slave: {...RUNNING, Slave_IO_Running: 'No', Last_IO_Error: ioError}}), PASSWORD)[0],
    ).toMatchObject({
      kind: 'reseed',
    })
    // The same error while replicating from another host: repointed first, not re-seeded.
    expect(
      planReplication(inv, web2, facts({slave: {...RUNNING, Master_Host: '10.77.0.99', Last_SQL_Error: sqlError}}), PASSWORD)[0],
    ).toMatchObject({kind: 'configure'})
  })

  test('a former writer (its own record names it) that does not replicate rejoins: configured, re-seeded only if it diverged', () => {
    expect(planReplication(inv, web2, facts({userDatabases: 3, writer: {generation: 4, name: 'web2'}}), PASSWORD)).toEqual([
      {kind: 'rejoin', from: 'web1', why: 'a former writer (generation 4) rejoining'},
    ])
    // Another host's record (replicated from a writer): a replica like any other.
    expect(planReplication(inv, web2, facts({userDatabases: 3, writer: {generation: 4, name: 'web1'}}), PASSWORD)).toEqual([
      {kind: 'configure', from: 'web1', why: 'not replicating'},
    ])
  })

  test('a replica of the wrong primary, without GTID or without TLS is configured again, with every reason', () => {
    const wrong = {...RUNNING, Master_Host: '10.77.0.99', Using_Gtid: 'No', Master_SSL_Allowed: 'No'}
    expect(planReplication(inv, web2, facts({slave: wrong}), PASSWORD)).toEqual([
      {kind: 'configure', from: 'web1', why: `replicates from 10.77.0.99, not ${web1.address}; GTID mode No; without TLS`},
    ])
  })

  test('the primary plans users only for the database hosts whose account is missing or not as wanted', () => {
    const user = (h: Host, hash = HASH, ssl = 'ANY') => ({user: 'repl', host: h.address, hash, ssl})
    expect(planReplication(inv, web1, facts({users: [user(web2), user(web3)]}), PASSWORD)).toEqual([])
    expect(planReplication(inv, web1, facts({users: [user(web2)]}), PASSWORD)).toEqual([{kind: 'users', hosts: [web3.address]}])
    // An old password, or TLS not required: changed.
    expect(planReplication(inv, web1, facts({users: [user(web2, nativePasswordHash('old')), user(web3, HASH, '')]}), PASSWORD)).toEqual([
      {kind: 'users', hosts: [web2.address, web3.address]},
    ])
    // No account for itself.
    expect(planReplication(inv, web1, facts({}), PASSWORD)).toEqual([{kind: 'users', hosts: [web2.address, web3.address]}])
  })
})

/* ---- A scripted MariaDB per host (no shell): enough SQL for replication, seeding and promotion. ---- */

interface Db {
  up: boolean
  readOnly: boolean
  serverId: number
  binlogPos: string
  slavePos: string
  databases: string[]
  users: Array<{user: string; host: string; hash: string; ssl: string}>
  slave?: Record<string, string>
  /** foobar_meta.writer (replicated in a real database; set per host here). */
  writer?: {generation: number; name: string}
  /** The fence marker file's content. */
  fenced?: string
  /** Runs before each read of the replication status (a replica catching up). */
  tick?: () => void
  /** Semi-sync's replicas connected to this host (Rpl_semi_sync_master_clients); not reported when undefined. */
  semiSyncClients?: number
  /** The statements run with semi-sync's wait for an absent replica switched off (noReplicaWaitScript). */
  withoutReplicaWait?: string[]
  /** A transaction in its binary log its primary never had: GTID strict mode stops the SQL thread on START SLAVE. */
  errant?: string
}

function database(h: Host, db: Partial<Db>, peers: Map<string, Db>): {fake: FakeHost; db: Db} {
  const fake = new FakeHost(h, {shell: false, answer: {code: 127, stderr: 'not scripted\n'}})
  fakes.push(fake)
  const state: Db = {
    up: true,
    readOnly: h.db?.role === 'replica',
    serverId: h.db!.serverId,
    binlogPos: '',
    slavePos: '',
    databases: [],
    users: [],
    ...db,
  }
  peers.set(h.address, state)
  const ok = (stdout = '') => ({code: 0, stdout, stderr: ''})
  fake.on(
    (c) => c.script.includes('mysqladmin --loose-skip-ssl --connect-timeout=3 ping'),
    () => {
      const marker = state.fenced ? [`fenced ${state.fenced}`] : []
      if (!state.up) return ok(['down', ...marker, ''].join('\n'))
      state.tick?.()
      const s = state
      return ok(
        [
          'up',
          ...s.users.map((u) => `user ${u.user} ${u.host} ${u.hash} ${u.ssl}`),
          ...(s.writer ? [`writer ${s.writer.generation} ${s.writer.name}`] : []),
          ...(s.semiSyncClients === undefined ? [] : [`semisync rpl_semi_sync_master_clients ${s.semiSyncClients}`]),
          ...Object.entries(s.slave ?? {}).map(([k, v]) => `slave ${k} ${v}`),
          `userdbs ${s.databases.length}`,
          `vars ${s.readOnly ? 1 : 0} ${s.serverId} ${s.binlogPos} ${s.slavePos}`,
          ...marker,
          '',
        ].join('\n'),
      )
    },
  )
  fake.on(/^mkdir -p .* && cat > '?\/var\/lib\/foobar\/db-fenced'?$/, (c: Command) => {
    state.fenced = (c.stdin ?? '').trim()
    return ok()
  })
  fake.on(/^rm -f '?\/var\/lib\/foobar\/db-fenced'?$/, () => {
    state.fenced = undefined
    return ok()
  })
  fake.on(/^systemctl kill -s KILL mariadb/, () => {
    state.up = false
    return ok()
  })
  fake.on(
    (c) => c.script === LIST_DATABASES,
    () => ok(state.databases.map((d) => `${d}\n`).join('')),
  )
  fake.on(/^timeout 5 bash -c /, () => ok())
  fake.on(/^mysqldump /, () =>
    ok(
      `-- MariaDB dump\nSET GLOBAL gtid_slave_pos='${state.binlogPos}';\n${state.databases.map((d) => `CREATE DATABASE ${d};\n`).join('')}`,
    ),
  )
  fake.on(
    (c) => c.stdin !== undefined && (c.script.startsWith(MYSQL) || c.script === noReplicaWaitScript()),
    (c: Command) => {
      if (c.script === noReplicaWaitScript()) (state.withoutReplicaWait ??= []).push(c.stdin!.trim())
      let out = ''
      const text = (c.stdin ?? '')
        .split('\n')
        .filter((l) => !l.startsWith('--'))
        .join('\n')
      for (const st of text
        .split(';')
        .map((x) => x.trim())
        .filter(Boolean)) {
        let m: RegExpExecArray | null
        if ((m = /^SET GLOBAL read_only = (ON|OFF)$/.exec(st))) state.readOnly = m[1] === 'ON'
        else if (st === 'SELECT @@gtid_binlog_pos') out += `${state.binlogPos}\n`
        else if (st === 'STOP SLAVE') state.slave &&= {...state.slave, Slave_IO_Running: 'No', Slave_SQL_Running: 'No'}
        else if (st === 'STOP SLAVE IO_THREAD') state.slave &&= {...state.slave, Slave_IO_Running: 'No'}
        else if (st === 'RESET SLAVE ALL') state.slave = undefined
        else if (st === 'RESET MASTER') {
          state.binlogPos = ''
          state.errant = undefined
        } else if ((m = /^SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'$/.exec(st))) state.slavePos = m[1]!
        else if (st === 'SELECT @@GLOBAL.gtid_slave_pos') out += `${state.slavePos}\n`
        else if ((m = /^SET GLOBAL gtid_binlog_state = '([^']*)'$/.exec(st))) {
          if (state.binlogPos) return {code: 1, stdout: '', stderr: 'ERROR 1940 (HY000): Binlog must be empty\n'}
          state.binlogPos = m[1]!
        } else if (st === 'SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos') {
          // Its own last write (the binary log's position) is later than what it last replicated.
          state.slavePos = state.binlogPos || state.slavePos
        } else if ((m = /^CHANGE MASTER TO MASTER_HOST='([^']+)'.*MASTER_SSL=1.*MASTER_USE_GTID=slave_pos$/s.exec(st))) {
          state.slave = {...RUNNING, Master_Host: m[1]!, Slave_IO_Running: 'No', Slave_SQL_Running: 'No'}
        } else if (st === 'START SLAVE') {
          if (state.slave) state.slave = {...state.slave, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes'}
          const master = peers.get(state.slave?.Master_Host ?? '')
          if (state.errant && state.slave)
            state.slave = {
              ...state.slave,
              Slave_SQL_Running: 'No',
              Last_SQL_Error: `An attempt was made to binlog GTID 0-3-105 which would create an out-of-order sequence number with existing GTID ${state.errant}, and gtid strict mode is enabled`,
            }
          else if (master) state.slavePos = master.binlogPos
        } else if ((m = /^(?:CREATE USER IF NOT EXISTS|ALTER USER) '([^']+)'@'([^']+)' IDENTIFIED BY '([^']+)' REQUIRE SSL$/.exec(st))) {
          state.users = [
            ...state.users.filter((u) => !(u.user === m![1] && u.host === m![2])),
            {user: m[1]!, host: m[2]!, hash: nativePasswordHash(m[3]!), ssl: 'ANY'},
          ]
        } else if (
          /^GRANT (REPLICATION SLAVE ON \*\.\*|SELECT ON foobar_meta\.\*) TO /.test(st) ||
          /^SET SESSION sql_log_bin = [01]$/.test(st)
        ) {
          // granted; binlogging is not modelled
        } else if ((m = /^CREATE DATABASE (?:IF NOT EXISTS )?(\S+)$/.exec(st))) {
          if (!state.databases.includes(m[1]!)) state.databases.push(m[1]!)
        } else if (st.startsWith('CREATE TABLE IF NOT EXISTS foobar_meta.writer ')) {
          // the record's table
        } else if ((m = /^INSERT (IGNORE )?INTO foobar_meta\.writer \(id, generation, writer\) VALUES \(1, (\d+), '([^']+)'\)/.exec(st))) {
          if (!m[1] || !state.writer) state.writer = {generation: Number(m[2]), name: m[3]!}
        } else return {code: 1, stdout: '', stderr: `ERROR 1064 (42000): not scripted: ${st}\n`}
      }
      return ok(out)
    },
  )
  return {fake, db: state}
}

const sqlOf = (f: FakeHost) => f.log.filter((c) => c.stdin !== undefined).map((c) => c.stdin!.trim())

describe('convergeReplication through scripted databases (the primary first)', () => {
  test('users on the primary, an empty new replica seeded and started, a running replica left alone', async () => {
    const peers = new Map<string, Db>()
    const p = database(web1, {binlogPos: '0-1-100', databases: ['shop']}, peers)
    const fresh = database(web2, {}, peers)
    // A running replica with its fence accounts and the writer record: nothing to do there.
    const fenceUsers = [web1, web2].map((h) => ({user: 'foobar_fence', host: h.address, hash: FENCE_HASH, ssl: 'ANY'}))
    const running = database(
      web3,
      {slave: RUNNING, slavePos: '0-1-100', databases: ['shop'], users: fenceUsers, writer: {generation: 1, name: 'web1'}},
      peers,
    )
    const byName = new Map([p, fresh, running].map((x) => [x.fake.host.name, x.fake]))
    const steps: string[] = []
    const failed = await convergeReplication(
      inv,
      [web1, web2, web3],
      async (h) => byName.get(h.name)!,
      PASSWORD,
      (h, s) => steps.push(`${h}: ${s}`),
    )
    expect(failed).toEqual({})
    const accounts = (d: Db) => d.users.map((u) => [u.user, u.host, u.ssl, u.hash === (u.user === 'repl' ? HASH : FENCE_HASH)])
    expect(accounts(p.db)).toEqual([
      ['foobar_fence', web2.address, 'ANY', true],
      ['foobar_fence', web3.address, 'ANY', true],
      ['repl', web2.address, 'ANY', true],
      ['repl', web3.address, 'ANY', true],
    ])
    // Fencing: the primary recorded as the designated writer and writable; every host has the fence's accounts.
    expect(p.db).toMatchObject({writer: {generation: 1, name: 'web1'}, readOnly: false})
    expect(accounts(fresh.db)).toEqual([
      ['foobar_fence', web1.address, 'ANY', true],
      ['foobar_fence', web3.address, 'ANY', true],
    ])
    expect(fresh.db).toMatchObject({
      databases: ['shop', 'foobar_meta'],
      slavePos: '0-1-100',
      slave: {Master_Host: web1.address, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes'},
    })
    // The running replica: its facts were read, nothing else.
    // Read twice (every host's writer record first, then its own plan), nothing else.
    expect(running.fake.log.map((c) => c.script)).toEqual([dbFactsScript('repl'), dbFactsScript('repl')])
    expect(steps).toEqual([
      `web1: fence account for ${web2.address}, ${web3.address} (TLS required, reads the writer record only)`,
      'web1: recording web1 as the designated writer (generation 1)',
      'web1: taking writes: web1 is the designated writer (generation 1)',
      `web1: replication user repl for ${web2.address}, ${web3.address} (TLS required)`,
      'web2: seeding from web1: shop, foobar_meta',
      'web2: replicating from web1 (GTID, TLS)',
      `web2: fence account for ${web1.address}, ${web3.address} (TLS required, reads the writer record only)`,
    ])
    // The primary's users exist before the replica connects with them.
    const created = p.fake.log.find((c) => c.stdin?.includes('CREATE USER'))!.seq
    const changed = fresh.fake.log.find((c) => c.stdin?.includes('CHANGE MASTER'))!.seq
    expect(created).toBeLessThan(changed)
  })

  test.each([
    ['no replica connected (a first convergence): its accounts and writer record wait for none', 0, true],
    ['a replica connected: its accounts and writer record run as any statement', 1, false],
  ])('semi-sync on the primary with %s', async (_, clients, unwaited) => {
    const peers = new Map<string, Db>()
    const p = database(web1, {binlogPos: '0-1-5', semiSyncClients: clients}, peers)
    const replicas = [web2, web3].map((h) => database(h, {}, peers))
    const byName = new Map([p, ...replicas].map((x) => [x.fake.host.name, x.fake]))
    const failed = await convergeReplication(
      inv,
      [web1, web2, web3],
      async (h) => byName.get(h.name)!,
      PASSWORD,
      () => {},
    )
    expect(failed).toEqual({})
    expect(p.db).toMatchObject({writer: {generation: 1, name: 'web1'}, readOnly: false})
    // Without a replica to acknowledge them, the binlogged statements would each wait the whole semi-sync timeout.
    const binlogged = sqlOf(p.fake).filter((st) => /CREATE USER IF NOT EXISTS 'repl'|INSERT IGNORE INTO foobar_meta\.writer/.test(st))
    expect(binlogged).toHaveLength(2)
    expect(p.db.withoutReplicaWait ?? []).toEqual(unwaited ? binlogged : [])
    // The replicas' statements never go through it.
    for (const r of replicas) expect(r.db.withoutReplicaWait).toBeUndefined()
  })

  test.each([
    ['the statements succeed', 'exit 0', 0],
    ['the statements fail', 'echo "ERROR 1007 (HY000): database exists" >&2; exit 1', 1],
  ])(
    'the wait for an absent replica is off for the statements only and put back as it was (%s), run for real',
    async (_, statements, code) => {
      // A stand-in mysql client: logs what it is asked (-e or stdin) and keeps the variable in a file.
      const f = new FakeHost(web1)
      fakes.push(f)
      f.put('/var/tmp/wait', '0\n')
      f.command(
        'mysql',
        [
          'for a; do case $a in -e) e=1 ;; *) if [ -n "$e" ]; then q=$a; e=; fi ;; esac; done',
          'if [ -z "$q" ]; then echo "stdin $(cat | tr "\\n" " ")" >> "$FAKE_ROOT/var/tmp/log"; ' + statements + '; fi',
          'echo "e $q" >> "$FAKE_ROOT/var/tmp/log"',
          'case $q in SELECT*) cat "$FAKE_ROOT/var/tmp/wait" ;; "SET "*" = "*) echo "${q##* = }" > "$FAKE_ROOT/var/tmp/wait" ;; esac',
        ].join('\n'),
      )
      const r = await f.run(noReplicaWaitScript(), {stdin: 'CREATE DATABASE d;\n', check: false})
      expect(r.code, r.stderr).toBe(code)
      const v = '@@GLOBAL.rpl_semi_sync_master_wait_no_slave'
      expect(f.file('/var/tmp/log')!.trim().split('\n')).toEqual([
        `e SELECT ${v}`,
        `e SET ${v} = OFF`,
        'stdin CREATE DATABASE d; ',
        // The operator's own setting (OFF here) comes back, not the default.
        `e SET ${v} = 0`,
      ])
      expect(f.file('/var/tmp/wait')).toBe('0\n')
    },
  )

  test('a server without the variable: the statements run once, as they are', async () => {
    const f = new FakeHost(web1)
    fakes.push(f)
    f.command(
      'mysql',
      'case "$*" in *" -e "*) echo "ERROR 1193 (HY000): Unknown system variable" >&2; exit 1 ;; esac\necho "stdin $(cat)" >> "$FAKE_ROOT/var/tmp/log"',
    )
    f.put('/var/tmp/log', '')
    const r = await f.run(noReplicaWaitScript(), {stdin: 'SELECT 1;'})
    expect(r.code, r.stderr).toBe(0)
    expect(f.file('/var/tmp/log')).toBe('stdin SELECT 1;\n')
  })

  test('a replica with data of its own is configured without a dump', async () => {
    const peers = new Map<string, Db>()
    const p = database(
      web1,
      {
        binlogPos: '0-1-100',
        databases: ['shop'],
        users: [web2, web3].map((h) => ({user: 'repl', host: h.address, hash: HASH, ssl: 'ANY'})),
      },
      peers,
    )
    const own = database(web2, {databases: ['shop'], slavePos: '0-1-100'}, peers)
    const byName = new Map([p, own].map((x) => [x.fake.host.name, x.fake]))
    const failed = await convergeReplication(
      inv,
      [web1, web2],
      async (h) => byName.get(h.name)!,
      PASSWORD,
      () => {},
    )
    expect(failed).toEqual({})
    expect(p.fake.commands(/mysqldump/)).toEqual([])
    expect(sqlOf(own.fake).join('\n')).toContain(`CHANGE MASTER TO MASTER_HOST='${web1.address}'`)
    expect(own.db.slave).toMatchObject({Slave_IO_Running: 'Yes'})
  })

  test('a diverged replica: its binary log reset, re-seeded from the primary, replicating again', async () => {
    const peers = new Map<string, Db>()
    const users = [web2, web3].map((h) => ({user: 'repl', host: h.address, hash: HASH, ssl: 'ANY'}))
    const p = database(web1, {binlogPos: '0-3-120', databases: ['shop'], users, writer: {generation: 2, name: 'web1'}}, peers)
    const sqlError =
      'An attempt was made to binlog GTID 0-3-105 which would create an out-of-order sequence number with existing GTID 0-2-105'
    const old = database(
      web2,
      {binlogPos: '0-2-105', databases: ['shop'], slave: {...RUNNING, Slave_SQL_Running: 'No', Last_SQL_Error: sqlError}},
      peers,
    )
    const byName = new Map([p, old].map((x) => [x.fake.host.name, x.fake]))
    const steps: string[] = []
    const failed = await convergeReplication(
      inv,
      [web1, web2],
      async (h) => byName.get(h.name)!,
      PASSWORD,
      (h, s) => steps.push(`${h}: ${s}`),
    )
    expect(failed).toEqual({})
    expect(steps).toContain(`web2: re-seeding from web1: diverged from web1: ${sqlError}`)
    const sql = sqlOf(old.fake)
    const reset = sql.findIndex((x) => x === 'STOP SLAVE; RESET SLAVE ALL; RESET MASTER;')
    const load = sql.findIndex((x) => x.startsWith('-- MariaDB dump'))
    const change = sql.findIndex((x) => x.includes('CHANGE MASTER'))
    expect(reset).toBeGreaterThanOrEqual(0)
    expect(reset).toBeLessThan(load)
    expect(load).toBeLessThan(change)
    expect(old.db).toMatchObject({slavePos: '0-3-120', slave: {Master_Host: web1.address, Slave_SQL_Running: 'Yes'}})
    // Its new binary log starts from the primary's history at the dump, for a host repointed to it later.
    expect(old.db.binlogPos).toBe('0-3-120')
  })
})

describe('a former writer rejoining after db promote --force (it was away)', () => {
  function rejoining(errant?: string) {
    const peers = new Map<string, Db>()
    const users = [web2, web3].map((h) => ({user: 'repl', host: h.address, hash: HASH, ssl: 'ANY'}))
    const p = database(web1, {binlogPos: '0-3-120', databases: ['shop'], users, writer: {generation: 3, name: 'web1'}}, peers)
    // web2 wrote up to 0-2-104 as the writer of generation 2; web1 took over at 0-3-105 without it.
    const old = database(web2, {binlogPos: errant ?? '0-2-104', databases: ['shop'], writer: {generation: 2, name: 'web2'}, errant}, peers)
    const byName = new Map([p, old].map((x) => [x.fake.host.name, x.fake]))
    const steps: string[] = []
    const converge = () =>
      convergeReplication(
        inv,
        [web1, web2],
        async (h) => byName.get(h.name)!,
        PASSWORD,
        (h, s) => steps.push(`${h}: ${s}`),
      )
    return {p, old, steps, converge}
  }

  test('with a transaction the new primary never had: re-seeded in the same run, saying why, replicating', async () => {
    const c = rejoining('0-2-105')
    expect(await c.converge()).toEqual({})
    const error =
      'An attempt was made to binlog GTID 0-3-105 which would create an out-of-order sequence number with existing GTID 0-2-105, and gtid strict mode is enabled'
    expect(c.steps.filter((s) => s.startsWith('web2: '))).toEqual([
      'web2: replicating from web1 (GTID, TLS): a former writer (generation 2) rejoining',
      `web2: re-seeding from web1: diverged from web1: ${error}`,
      'web2: seeding from web1: shop',
      'web2: fence account for 10.77.0.12, 10.77.0.14 (TLS required, reads the writer record only)',
    ])
    const sql = sqlOf(c.old.fake)
    const reset = sql.indexOf('STOP SLAVE; RESET SLAVE ALL; RESET MASTER;')
    const load = sql.findIndex((x) => x.startsWith('-- MariaDB dump'))
    expect(reset).toBeGreaterThan(sql.findIndex((x) => x.includes('CHANGE MASTER')))
    expect(load).toBeGreaterThan(reset)
    expect(c.old.db).toMatchObject({errant: undefined, slavePos: '0-3-120', slave: {Master_Host: web1.address, Slave_SQL_Running: 'Yes'}})
    expect(c.old.db.binlogPos).toBe('0-3-120')
  })

  test('without one: repointed, no dump, nothing reset', async () => {
    const c = rejoining()
    expect(await c.converge()).toEqual({})
    expect(c.p.fake.commands(/mysqldump/)).toEqual([])
    expect(sqlOf(c.old.fake).filter((x) => x.includes('RESET MASTER'))).toEqual([])
    expect(c.old.db.slave).toMatchObject({Master_Host: web1.address, Slave_SQL_Running: 'Yes'})
  })

  test('a replica that was not a writer is never re-seeded in the run: its divergence is reported', async () => {
    const c = rejoining('0-2-105')
    c.old.db.writer = {generation: 3, name: 'web1'}
    expect((await c.converge()).web2).toMatch(/^web2: replication did not start: An attempt was made to binlog GTID 0-3-105 /)
    expect(c.p.fake.commands(/mysqldump/)).toEqual([])
  })
})

describe('gtidCovers: the proof that a replica has every transaction', () => {
  test.each([
    ['0-1-100', '0-1-100', true],
    ['0-1-101', '0-1-100', true],
    ['0-1-99', '0-1-100', false],
    ['', '0-1-100', false],
    ['0-1-100', '', true],
    // Sequence numbers count per domain, whichever server wrote them.
    ['0-2-105', '0-1-100', true],
    // Every domain must be covered; domains the primary never wrote do not matter.
    ['0-1-100,1-3-7', '0-1-100,1-3-7', true],
    ['1-3-7,0-1-100', '0-1-100,1-3-7', true],
    ['0-1-100,1-3-6', '0-1-100,1-3-7', false],
    ['0-1-100', '0-1-100,1-3-7', false],
    ['0-1-100,1-3-7,2-9-1', '0-1-100,1-3-7', true],
    [' 0-1-100 , 1-3-7 ', '0-1-100,1-3-7', true],
  ])('%j covers %j: %s', (have, want, covers) => {
    expect(gtidCovers(have, want)).toBe(covers)
  })
})

describe('db promote through scripted databases', () => {
  // Its polls half a second apart, in milliseconds.
  let restore: () => void
  beforeEach(() => {
    restore = fastTimers()
  })
  afterEach(() => restore())

  function cluster(o: {replicaPos: string; primaryPos: string; catchUpAfter?: number; primaryDown?: boolean}) {
    const peers = new Map<string, Db>()
    const users = [web1, web2, web3].map((h) => ({user: 'repl', host: h.address, hash: HASH, ssl: 'ANY'}))
    const old = database(web1, {binlogPos: o.primaryPos, users}, peers)
    const target = database(web2, {slave: RUNNING, slavePos: o.replicaPos, binlogPos: '', users}, peers)
    const other = database(web3, {slave: RUNNING, slavePos: o.primaryPos}, peers)
    let polls = 0
    target.db.tick = () => {
      if (o.catchUpAfter !== undefined && ++polls > o.catchUpAfter) target.db.slavePos = o.primaryPos
    }
    const byName = new Map([old, target, other].map((x) => [x.fake.host.name, x.fake]))
    const connect = async (h: Host) => {
      if (h === web1 && o.primaryDown) throw new Error('web1: cannot connect to deploy@10.77.0.12:22: connect ECONNREFUSED')
      return byName.get(h.name)!
    }
    const steps: string[] = []
    const run = (force: boolean, timeoutMs = 100) => promote(inv, web2, connect, PASSWORD, {force, timeoutMs, step: (s) => steps.push(s)})
    return {old, target, other, run, steps}
  }

  test('a lagging replica: refused without --force, and the old primary is writable again', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-90'})
    const error = await c.run(false).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Failure)
    expect((error as Error).message).toBe(
      "web2 has 0-1-90 of web1's 0-1-100 after 0.1s: promoting would lose committed transactions; web1 is writable again. Use --force to promote anyway.",
    )
    // Marked fenced first, then read-only; both undone.
    expect(sqlOf(c.old.fake)).toEqual([
      expect.stringMatching(/^generation 1: web2 is the writer \(db promote, /),
      'SET GLOBAL read_only = ON;',
      'SELECT @@gtid_binlog_pos;',
      'SET GLOBAL read_only = OFF;',
    ])
    expect(c.old.db).toMatchObject({readOnly: false, fenced: undefined})
    // Nothing changed on the replicas.
    expect(sqlOf(c.target.fake)).toEqual([])
    expect(c.target.db).toMatchObject({readOnly: true, slave: {Slave_IO_Running: 'Yes'}})
    // The other replica: its writer record read (for the new generation), nothing changed.
    expect(sqlOf(c.other.fake)).toEqual([])
  })

  test('covered once the replica has caught up: fenced, promoted, the others (old primary too) repointed to it', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-90', catchUpAfter: 1})
    const r = await c.run(false, 5000)
    expect(r).toEqual({
      newPrimary: 'web2',
      oldPrimary: 'web1',
      oldPrimaryFenced: true,
      oldPrimaryStopped: false,
      repointed: ['web1', 'web3'],
      position: '0-1-100',
      generation: 1,
    })
    // The new writer recorded (a generation above every one seen); the old primary marked fenced.
    expect(c.target.db).toMatchObject({readOnly: false, slave: undefined, writer: {generation: 1, name: 'web2'}, fenced: undefined})
    expect(c.old.db.fenced).toMatch(/^generation 1: web2 is the writer/)
    expect(c.target.db.users.map((u) => u.host).sort()).toEqual([web1.address, web2.address, web3.address])
    for (const x of [c.old, c.other])
      expect(x.db).toMatchObject({
        readOnly: true,
        slave: {Master_Host: web2.address, Slave_IO_Running: 'Yes', Using_Gtid: 'Slave_Pos', Master_SSL_Allowed: 'Yes'},
      })
    // The old primary asks the new writer for what follows its own last write, not its stale replication position.
    const oldSql = sqlOf(c.old.fake)
    expect(oldSql.indexOf('SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos;')).toBe(
      oldSql.findIndex((x) => x.includes('CHANGE MASTER')) - 1,
    )
    // Fenced before the position was read, promoted only after it was covered.
    const fenced = c.old.fake.log.find((x) => x.stdin === 'SET GLOBAL read_only = ON;')!.seq
    const promoted = c.target.fake.log.find((x) => x.stdin?.startsWith('STOP SLAVE; RESET SLAVE ALL'))!.seq
    expect(fenced).toBeLessThan(promoted)
    // No replica replicates from the new writer yet: its record and accounts wait for none (a whole semi-sync timeout
    // each promotion otherwise); read_only is lifted after them, for the application's writes, which wait as before.
    expect(c.target.db.withoutReplicaWait).toHaveLength(1)
    expect(c.target.db.withoutReplicaWait![0]).toMatch(
      /^STOP SLAVE; RESET SLAVE ALL;\nCREATE DATABASE IF NOT EXISTS foobar_meta;[\s\S]*INSERT INTO foobar_meta\.writer [\s\S]*CREATE USER IF NOT EXISTS 'repl'/,
    )
    const lifted = c.target.fake.log.find((x) => x.stdin === 'SET GLOBAL read_only = OFF;')!.seq
    expect(promoted).toBeLessThan(lifted)
    expect(c.steps).toEqual([
      'fencing web1: read-only',
      'waiting for web2 to reach 0-1-100',
      'promoting web2 (designated writer, generation 1)',
      'repointing web1 to web2',
      'repointing web3 to web2',
    ])
  })

  test('several GTID domains: every one must be covered', async () => {
    const lagging = cluster({primaryPos: '0-1-100,1-3-7', replicaPos: '0-1-100,1-3-6'})
    await expect(lagging.run(false)).rejects.toThrow("web2 has 0-1-100,1-3-6 of web1's 0-1-100,1-3-7")
    const covered = cluster({primaryPos: '0-1-100,1-3-7', replicaPos: '1-3-7,0-1-100,2-9-4'})
    expect(await covered.run(false)).toMatchObject({newPrimary: 'web2', position: '0-1-100,1-3-7'})
  })

  test('--force promotes a lagging replica all the same', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-90'})
    expect(await c.run(true)).toMatchObject({newPrimary: 'web2', oldPrimaryFenced: true, repointed: ['web1', 'web3']})
  })

  test('an unreachable primary: nothing can be proven, so refused without --force; with it, promoted and the others repointed', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-100', primaryDown: true})
    await expect(c.run(false)).rejects.toThrow(
      'the primary web1 is unreachable (web1: cannot connect to deploy@10.77.0.12:22: connect ECONNREFUSED): cannot prove web2 has every committed transaction; use --force to promote anyway',
    )
    // The replica's state was read, nothing changed.
    expect(sqlOf(c.target.fake)).toEqual([])
    expect(await c.run(true)).toEqual({
      newPrimary: 'web2',
      oldPrimary: 'web1',
      oldPrimaryFenced: false,
      oldPrimaryStopped: false,
      repointed: ['web3'],
      position: '',
      generation: 1,
    })
    expect(c.other.db.slave).toMatchObject({Master_Host: web2.address})
  })

  test('--force without the old primary: what the replica received is applied before its relay log goes', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-97', primaryDown: true})
    c.target.db.slave = {...RUNNING, Gtid_IO_Pos: '0-1-100'}
    let polls = 0
    c.target.db.tick = () => {
      if (c.target.db.slave?.Slave_IO_Running === 'No' && ++polls > 2) c.target.db.slavePos = '0-1-100'
    }
    expect(await c.run(true, 5000)).toMatchObject({newPrimary: 'web2', position: ''})
    expect(c.steps.slice(0, 2)).toEqual([
      'waiting for web2 to apply what it received from web1 (0-1-100)',
      'promoting web2 (designated writer, generation 1)',
    ])
    const sql = sqlOf(c.target.fake)
    expect(sql.indexOf('STOP SLAVE IO_THREAD;')).toBeLessThan(sql.findIndex((x) => x.startsWith('STOP SLAVE; RESET SLAVE ALL')))
    expect(c.target.db.slavePos).toBe('0-1-100')
  })

  test('--force, the received transactions cannot be applied (SQL thread stopped): said, and promoted all the same', async () => {
    const c = cluster({primaryPos: '0-1-100', replicaPos: '0-1-97', primaryDown: true})
    c.target.db.slave = {...RUNNING, Gtid_IO_Pos: '0-1-100', Slave_SQL_Running: 'No', Last_SQL_Error: 'Duplicate entry'}
    expect(await c.run(true, 5000)).toMatchObject({newPrimary: 'web2'})
    expect(c.steps[0]).toBe(
      'web2 did not apply all it received from web1 (0-1-97 of 0-1-100): its SQL thread stopped: Duplicate entry; promoting anyway (--force)',
    )
  })
})

describe("verify's 'writes on the replica refused'", () => {
  test("verify's account gets the password of the current secret even when it exists (a rotated secret: not refused at login)", () => {
    const sql = heartbeatSql('new-probe-password', 'abc123').split('\n')
    const create = sql.indexOf("CREATE USER IF NOT EXISTS 'foobar_verify'@'localhost' IDENTIFIED BY 'new-probe-password';")
    const alter = sql.indexOf("ALTER USER 'foobar_verify'@'localhost' IDENTIFIED BY 'new-probe-password';")
    // CREATE USER IF NOT EXISTS leaves an existing account's old password: the ALTER after it sets the current one.
    expect(create).toBeGreaterThanOrEqual(0)
    expect(alter).toBeGreaterThan(create)
    expect(sql.at(-1)).toBe("REPLACE INTO foobar_health.heartbeat (id, token) VALUES (1, 'abc123');")
  })

  test('read-only passes; an accepted write fails; a login refused at the replica says why it can be', () => {
    const readOnly =
      'ERROR 1290 (HY000) at line 1: The MariaDB server is running with the --read-only option so it cannot execute this statement\n'
    expect(replicaWriteVerdict(1, readOnly)).toEqual({ok: true, detail: 'read-only'})
    expect(replicaWriteVerdict(0, '')).toEqual({ok: false, detail: 'a write was ACCEPTED on a replica'})
    // What the demo's verify showed while the account was on its way: it read like the check's failure.
    const denied = "ERROR 1698 (28000): Access denied for user 'foobar_verify'@'localhost'\n"
    const waiting = replicaWriteVerdict(1, denied)
    expect(waiting.ok).toBe(false)
    expect(waiting.detail).toBe(
      "the replica refused verify's account at login (made on the primary, it comes by replication: not there yet, or with another password): ERROR 1698 (28000): Access denied for user 'foobar_verify'@'localhost'",
    )
    expect(
      replicaWriteVerdict(1, "ERROR 1045 (28000): Access denied for user 'foobar_verify'@'localhost' (using password: YES)\n").detail,
    ).toMatch(/^the replica refused verify's account at login \(/)
    // Anything else is shown as the client said it.
    expect(replicaWriteVerdict(1, "ERROR 2002 (HY000): Can't connect to local server through socket\n")).toEqual({
      ok: false,
      detail: "ERROR 2002 (HY000): Can't connect to local server through socket",
    })
  })
})
