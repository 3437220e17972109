/*
 * The Galera topology (issue 17, item 6): the inventory's rules, the choice of the one member that may start a new
 * cluster, each member's plan, the cluster's assessment for db status, and what is rendered for members, the
 * arbitrator and the database endpoint.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {
  type MemberFacts,
  type MemberStatus,
  assessGalera,
  chooseBootstrap,
  parseMemberFacts,
  planMember,
  positionOf,
} from '../../src/components/galera/cluster.js'
import {desiredState} from '../../src/components/index.js'
import {InventoryError, parseInventory} from '../../src/inventory/index.js'
import {Failure} from '../../src/util/errors.js'
import {ROOT, fileOf, renderAll} from './support/render.js'

const HOSTS = `hosts:
  - {name: lb1, address: 10.0.0.11, roles: [lb]}
  - {name: db1, address: 10.0.0.21, roles: [db]}
  - {name: db2, address: 10.0.0.22, roles: [db]}
  - {name: db3, address: 10.0.0.23, roles: [db]}
  - {name: web1, address: 10.0.0.31, roles: [web]}
`
const text = (mysql: string, hosts = HOSTS) =>
  [
    'site: {domain: www.foobar.test, aliases: [], email: admin@foobar.test}',
    'ssh: {user: deploy, sudo: true}',
    'firewall: {backend: ufw, admin_cidrs: [10.0.0.1/32]}',
    'monitoring: {enabled: false}',
    `mysql: ${mysql}`,
    hosts,
  ].join('\n')

function problems(mysql: string): string[] {
  try {
    parseInventory(text(mysql), '/x/inv.yml')
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError)
    return (error as InventoryError).problems.map((p) => `${p.field}: ${p.message}`)
  }
  throw new Error('expected the inventory to be rejected')
}

const three = parseInventory(text('{topology: galera, primary: db1, replicas: [db2, db3]}'), '/x/inv.yml')
const withArb = parseInventory(
  text(
    '{topology: galera, primary: db1, replicas: [db2], arbitrator: lb1}',
    HOSTS.replace('  - {name: db3, address: 10.0.0.23, roles: [db]}\n', ''),
  ),
  '/x/inv.yml',
)

describe('inventory: topology galera', () => {
  test('three members, or two and an arbitrator; no replication password needed', () => {
    expect(three.mysql).toMatchObject({topology: 'galera', clusterName: 'foobar', primary: 'db1', replicas: ['db2', 'db3']})
    expect(withArb.mysql?.arbitrator).toBe('lb1')
  })

  test('two members without an arbitrator: refused, saying why', () => {
    const p = problems('{topology: galera, primary: db1, replicas: [db2]}').join('\n')
    expect(p).toMatch(/galera needs at least three members, or two and an arbitrator .* this has 2 members/)
  })

  test('the arbitrator: a host of the inventory without the db role; only for galera', () => {
    expect(problems('{topology: galera, primary: db1, replicas: [db2], arbitrator: db3}').join('\n')).toMatch(
      /mysql.arbitrator: "?db3"? has the db role/,
    )
    expect(problems('{topology: galera, primary: db1, replicas: [db2, db3], arbitrator: nope}').join('\n')).toMatch(
      /mysql.arbitrator: "?nope"? is not a host in this inventory/,
    )
    expect(problems('{primary: db1, replicas: [db2, db3], arbitrator: lb1, replication_password: {env: X}}').join('\n')).toMatch(
      /an arbitrator is for topology: galera only/,
    )
  })

  test('MySQL, a hostile cluster name and an unknown topology are refused', () => {
    expect(problems('{engine: mysql, topology: galera, primary: db1, replicas: [db2, db3]}').join('\n')).toMatch(
      /galera needs engine: mariadb/,
    )
    expect(problems('{topology: galera, cluster_name: "x;rm -rf /", primary: db1, replicas: [db2, db3]}').join('\n')).toMatch(
      /mysql.cluster_name: must be a-z/,
    )
    expect(problems('{topology: multi, primary: db1, replicas: [db2, db3]}').join('\n')).toMatch(/must be primary-replica or galera/)
  })
})

const facts = (lines: string[]): MemberFacts => parseMemberFacts(lines)
const synced = [
  'service active',
  'up',
  'wsrep_on 1',
  'status wsrep_cluster_status Primary',
  'status wsrep_ready ON',
  'status wsrep_local_state_comment Synced',
  'status wsrep_cluster_size 3',
]

describe('a member (pure)', () => {
  test('parsed from its lines', () => {
    const f = facts([
      ...synced,
      'grastate uuid 6b5b3f6e-0000-11ef-8000-aaaaaaaaaaaa',
      'grastate seqno -1',
      'grastate safe_to_bootstrap 0',
      'stale',
    ])
    expect(f).toMatchObject({up: true, wsrepOn: true, stale: true, grastate: {seqno: -1, safeToBootstrap: false}})
    expect(f.status.wsrep_cluster_size).toBe('3')
  })

  test('plan: nothing when synced; a restart when its files changed; a join when down, standalone or cut off', () => {
    expect(planMember(facts(synced), false)).toEqual([])
    expect(planMember(facts(synced), true).map((a) => a.kind)).toEqual(['restart'])
    expect(planMember(facts([...synced, 'stale']), false).map((a) => a.kind)).toEqual(['restart'])
    expect(planMember(facts(['service failed', 'down']), false)).toEqual([{kind: 'join', why: 'its database is failed'}])
    expect(planMember(facts(['service active', 'up', 'wsrep_on 0', 'fence', 'slave']), true).map((a) => a.kind)).toEqual([
      'unfence',
      'detach',
      'join',
    ])
    const cutOff = synced.map((l) => l.replace('Primary', 'non-Primary'))
    expect(planMember(facts(cutOff), false)).toEqual([{kind: 'join', why: "not in the cluster's primary component (non-Primary)"}])
  })
})

describe('chooseBootstrap (pure): one member starts a cluster, never a guess', () => {
  const U = '6b5b3f6e-0000-11ef-8000-aaaaaaaaaaaa'
  const pos = (host: string, lines: string[], recovered?: {uuid: string; seqno: number}) =>
    positionOf(host, facts(['down', ...lines]), recovered)

  test('no history (new, or made from primary/replica): the primary, whose data the others receive', () => {
    expect(
      chooseBootstrap(three, [
        pos('db1', []),
        pos('db2', []),
        pos('db3', ['grastate uuid 00000000-0000-0000-0000-000000000000', 'grastate seqno -1']),
      ]).host,
    ).toBe('db1')
  })

  test('the most advanced member; a tie goes to safe_to_bootstrap, then the inventory order', () => {
    const g = (seq: number, safe = 0) => [`grastate uuid ${U}`, `grastate seqno ${seq}`, `grastate safe_to_bootstrap ${safe}`]
    expect(chooseBootstrap(three, [pos('db1', g(10)), pos('db2', g(12)), pos('db3', g(11))])).toMatchObject({host: 'db2'})
    expect(chooseBootstrap(three, [pos('db1', g(12)), pos('db2', g(12)), pos('db3', g(12, 1))]).host).toBe('db3')
    expect(chooseBootstrap(three, [pos('db1', g(12)), pos('db2', g(12)), pos('db3', g(1))]).host).toBe('db1')
    // A crashed member's position comes from InnoDB's recovery.
    expect(chooseBootstrap(three, [pos('db1', g(10)), pos('db2', g(-1), {uuid: U, seqno: 15}), pos('db3', g(11))]).host).toBe('db2')
  })

  test('two histories, or a position nobody knows: refused', () => {
    const other = '11111111-2222-3333-4444-555555555555'
    expect(() =>
      chooseBootstrap(three, [
        pos('db1', [`grastate uuid ${U}`, 'grastate seqno 3']),
        pos('db2', [`grastate uuid ${other}`, 'grastate seqno 9']),
      ]),
    ).toThrow(Failure)
    expect(() => chooseBootstrap(three, [pos('db1', [`grastate uuid ${U}`, 'grastate seqno -1']), pos('db2', [])])).toThrow(/unknown/)
  })
})

describe('assessGalera (pure): what db status reports', () => {
  const ok = (host: string, size = 3): MemberStatus => ({
    host,
    role: 'member',
    up: true,
    clusterStatus: 'Primary',
    state: 'Synced',
    clusterSize: size,
    clusterUuid: 'u1',
    ready: true,
  })

  test('every member synced in one cluster of all: no problem', () => {
    expect(assessGalera(three, [ok('db1'), ok('db2'), ok('db3')])).toEqual({writable: ['db1', 'db2', 'db3'], problems: []})
  })

  test('a member down: named, and the cluster short of one', () => {
    const r = assessGalera(three, [ok('db1', 2), ok('db2', 2), {host: 'db3', role: 'member', up: false, service: 'failed'}])
    expect(r.problems.map((p) => p.problem)).toEqual([
      'database failed',
      'the cluster has 2 of 3 (members): one more failure may cost the quorum',
    ])
  })

  test('two primary components, a member cut off, a joiner', () => {
    const split = assessGalera(three, [
      ok('db1'),
      {...ok('db2'), clusterUuid: 'u2'},
      {...ok('db3'), clusterStatus: 'non-Primary', ready: false},
    ])
    expect(split.problems.map((p) => p.problem)).toEqual([
      'not in the primary component (non-Primary): it refuses writes',
      'two clusters take writes (u1, u2)',
    ])
    expect(assessGalera(three, [ok('db1'), ok('db2'), {...ok('db3'), state: 'Joiner'}]).problems[0]?.problem).toMatch(/Joiner: catching up/)
  })
})

describe('rendered for galera', () => {
  const file = join(ROOT, 'inventories', 'lab-galera.yml')
  const galera = parseInventory(readFileSync(file, 'utf8'), file)
  const files = renderAll(galera)

  test("a member's config: wsrep over TLS, state transfers over TLS, no read_only, no primary/replica fence", () => {
    const cnf = fileOf(files, 'web1', '/etc/mysql/mariadb.conf.d/60-foobar.cnf')
    expect(cnf).toMatch(/wsrep_cluster_address = gcomm:\/\/10\.77\.0\.12,10\.77\.0\.13/)
    expect(cnf).toMatch(/socket\.ssl=YES;socket\.ssl_ca=/)
    expect(cnf).toMatch(/\[sst\]\nssl-mode = VERIFY_CA/)
    expect(cnf).not.toMatch(/read_only|rpl_semi_sync/)
    const d = desiredState(
      galera,
      galera.hosts.find((h) => h.name === 'web1')!,
    )
    expect(d.files.map((f) => f.path)).not.toContain('/usr/local/lib/foobar/db-fence')
    expect(d.absent).toContain('/etc/systemd/system/foobar-db-fence.service')
    // The database restarts only in the galera step, one member at a time: no plain restart of it by the engine.
    expect(d.services.map((s) => s.name)).not.toContain('mariadb')
    expect(d.packages).toEqual(expect.arrayContaining(['galera-4', 'mariadb-backup', 'socat']))
  })

  test('the arbitrator on lb1: garbd with its own certificate as credentials; the firewall admits only the members', () => {
    const garb = fileOf(files, 'lb1', '/etc/default/garb')
    expect(garb).toMatch(/GALERA_NODES="10\.77\.0\.12:4567 10\.77\.0\.13:4567"/)
    expect(garb).toMatch(/socket\.ssl_key=\$\{CREDENTIALS_DIRECTORY\}\/key/)
    const dir = mkdtempSync(join(tmpdir(), 'garb-'))
    writeFileSync(join(dir, 'garb'), garb)
    execFileSync('sh', ['-n', join(dir, 'garb')])
    expect(fileOf(files, 'lb1', '/etc/foobar/firewall/ufw.rules')).toMatch(/from 10\.77\.0\.12\/31 to any port 4567/)
    const web1 = fileOf(files, 'web1', '/etc/foobar/firewall/ufw.rules')
    expect(web1).toMatch(/from 10\.77\.0\.13\/32 to any port 4444/)
    expect(web1).toMatch(/from 10\.77\.0\.11\/32 to any port 4567/)
    expect(web1).not.toMatch(/from 10\.77\.0\.11\/32 to any port 4444/)
  })

  test("the endpoint's writer check asks Galera (synced, primary component, ready); the primary first, web2 the backup", () => {
    const check = fileOf(files, 'web1', '/usr/local/lib/foobar/db-writer-check')
    expect(check).toMatch(/WSREP_LOCAL_STATE_COMMENT/)
    const dir = mkdtempSync(join(tmpdir(), 'check-'))
    writeFileSync(join(dir, 'check.py'), check)
    // judge() as the check runs it, on what mysql prints.
    const judge = (out: string) =>
      execFileSync(
        'python3',
        [
          '-c',
          `import ast,sys\nsrc=open(sys.argv[1]).read()\nns={}\nexec(compile(ast.Module([n for n in ast.parse(src).body if isinstance(n,ast.FunctionDef) or (isinstance(n,ast.Assign) and getattr(n.targets[0],'id','')=='QUERY')],[]),'c','exec'),ns)\nprint(ns['judge'](sys.argv[2].split()))`,
          join(dir, 'check.py'),
          out,
        ],
        {encoding: 'utf8'},
      ).trim()
    expect(judge('0 Primary Synced ON')).toBe('writer')
    // A donor keeps taking writes (its transfers do not block it); a joiner still catching up does not.
    expect(judge('0 Primary Donor/Desynced ON')).toBe('writer')
    expect(judge('0 Primary Joiner ON')).toBe('not-synced')
    expect(judge('0 Primary Joined ON')).toBe('not-synced')
    expect(judge('0 non-Primary Synced OFF')).toBe('not-synced')
    expect(judge('1 Primary Synced ON')).toBe('read-only')
    const cfg = fileOf(files, 'web1', '/etc/foobar/db-endpoint/haproxy.cfg')
    expect(cfg).toMatch(/server web1 10\.77\.0\.12:3306 verifyhost web1\n\s+server web2 10\.77\.0\.13:3306 backup verifyhost web2/)
  })
})

describe('inventories/foobar-galera.yml: three database hosts, no arbitrator', () => {
  const file = join(ROOT, 'inventories', 'foobar-galera.yml')
  const inv = parseInventory(readFileSync(file, 'utf8'), file)
  const files = renderAll(inv)

  test('every member lists all three; the web servers reach the first synced one; nobody but members gets the transfer ports', () => {
    for (const h of ['db1', 'db2', 'db3']) {
      expect(fileOf(files, h, '/etc/mysql/mariadb.conf.d/60-foobar.cnf')).toMatch(
        /wsrep_cluster_address = gcomm:\/\/203\.0\.113\.21,203\.0\.113\.22,203\.0\.113\.23/,
      )
      const rules = fileOf(files, h, '/etc/foobar/firewall/ufw.rules')
      expect(rules).not.toMatch(/from 203\.0\.113\.1[0-2]\/\d+ to any port (4444|4567|4568)/)
    }
    expect(fileOf(files, 'web1', '/etc/foobar/db-endpoint/haproxy.cfg')).toMatch(
      /server db1 [^\n]*\n\s+server db2 [^\n]* backup[^\n]*\n\s+server db3 [^\n]* backup/,
    )
    expect(inv.hosts.some((h) => files.get(h.name)!.some((f) => f.path === '/etc/default/garb'))).toBe(false)
  })
})
