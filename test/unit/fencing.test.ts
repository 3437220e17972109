/*
 * Fencing (issue 17): the pure plan (who records the writer, who lifts read-only, when provisioning must refuse),
 * the fence script that runs on the database hosts at every start (run for real on a fake host with stubbed mysql
 * clients), promotion with the old primary's database dead, and the topology verdict behind `db status`.
 */
import {afterAll, afterEach, beforeEach, describe, expect, test} from 'vitest'
import {FENCE, fencePassword} from '../../src/components/mysql/fence.js'
import {type DbFacts, nativePasswordHash, planFencing} from '../../src/components/mysql/replication.js'
import {type DbHostStatus, promote} from '../../src/components/mysql/replicate.js'
import {assessTopology} from '../../src/components/mysql/topology.js'
import type {Host} from '../../src/inventory/index.js'
import {renderTemplate} from '../../src/render/templates.js'
import {Failure} from '../../src/util/errors.js'
import {FakeHost, fastTimers, testInventory} from './support/fake-host.js'

const PASSWORD = 'repl-secret-1'
const inv = testInventory(['web1 10.77.0.12 web db', 'web2 10.77.0.13 web db', 'web3 10.77.0.14 web db'], {
  yaml: 'mysql: {engine: mariadb, primary: web1, replicas: [web2, web3], replication_user: repl, replication_password: {env: FOOBAR_TEST_REPL_PASSWORD}}\n',
})
const host = (name: string) => inv.hosts.find((h) => h.name === name)!
const [web1, web2, web3] = ['web1', 'web2', 'web3'].map(host) as [Host, Host, Host]
const fenceUsers = (h: Host) =>
  [web1, web2, web3].filter((x) => x !== h).map((x) => ({host: x.address, hash: nativePasswordHash(fencePassword(PASSWORD)), ssl: 'ANY'}))
const facts = (h: Host, f: Partial<DbFacts>): DbFacts => ({
  up: true,
  users: [],
  slave: {},
  userDatabases: 0,
  fenceUsers: fenceUsers(h),
  ...f,
})

const fakes: FakeHost[] = []
afterAll(() => fakes.forEach((f) => f.cleanup()))

describe('planFencing (pure)', () => {
  test('the primary: the writer recorded once and read-only lifted; then nothing', () => {
    expect(planFencing(inv, web1, facts(web1, {readOnly: true}), PASSWORD)).toEqual([
      {kind: 'designate', writer: 'web1'},
      {kind: 'unfence', generation: 1},
    ])
    expect(planFencing(inv, web1, facts(web1, {readOnly: true, writer: {generation: 4, name: 'web1'}}), PASSWORD)).toEqual([
      {kind: 'unfence', generation: 4},
    ])
    expect(planFencing(inv, web1, facts(web1, {readOnly: false, writer: {generation: 4, name: 'web1'}}), PASSWORD)).toEqual([])
  })

  test("the fence's accounts: one per other database host, re-made when the password changed", () => {
    const stale = facts(web2, {readOnly: true, fenceUsers: [{host: web1.address, hash: nativePasswordHash('old'), ssl: 'ANY'}]})
    expect(planFencing(inv, web2, stale, PASSWORD)).toEqual([{kind: 'fence-users', hosts: [web1.address, web3.address]}])
    expect(planFencing(inv, web2, facts(web2, {readOnly: true}), PASSWORD)).toEqual([])
  })

  test('a writable replica is fenced', () => {
    expect(planFencing(inv, web2, facts(web2, {readOnly: false}), PASSWORD)).toEqual([
      {kind: 'fence', why: 'writable, but not the designated writer'},
    ])
  })

  test('a promotion the inventory does not know: provisioning refuses rather than undo it', () => {
    const promoted = {generation: 2, name: 'web2'}
    expect(() => planFencing(inv, web1, facts(web1, {readOnly: true, writer: promoted}), PASSWORD)).toThrow(
      "web1's database says web2 is the writer (generation 2), not web1 as the inventory says: update mysql.primary and mysql.replicas",
    )
    expect(() => planFencing(inv, web3, facts(web3, {readOnly: true, writer: promoted}), PASSWORD)).toThrow(
      "web3's database says web2 is the writer (generation 2), the inventory says web1",
    )
    expect(() => planFencing(inv, web1, facts(web1, {readOnly: true, fenced: 'generation 2: web2 is the writer'}), PASSWORD)).toThrow(
      'web1 was fenced by a promotion (generation 2: web2 is the writer), but the inventory names it the primary',
    )
    // An old primary that came back after a promotion (the inventory updated): its stale record names itself.
    const updated = testInventory(['web1 10.77.0.12 web db', 'web2 10.77.0.13 web db', 'web3 10.77.0.14 web db'], {
      yaml: 'mysql: {engine: mariadb, primary: web2, replicas: [web1, web3], replication_user: repl, replication_password: {env: FOOBAR_TEST_REPL_PASSWORD}}\n',
    })
    const oldWeb1 = updated.hosts.find((h) => h.name === 'web1')!
    expect(planFencing(updated, oldWeb1, facts(oldWeb1, {readOnly: true, writer: {generation: 1, name: 'web1'}}), PASSWORD)).toEqual([])
  })
})

/* ---- The fence script on a database host, with stubbed mysql clients. ---- */

interface Cluster {
  local?: string
  /** Peer address -> its record ("gen\twriter"), '' for no record, undefined: does not answer. */
  peers: Record<string, string | undefined>
  /** After this many sleeps the peers given here answer (a peer coming up). */
  later?: {afterSleeps: number; peers: Record<string, string>}
}

function fenceHost(c: Cluster): FakeHost {
  const f = new FakeHost(web1)
  fakes.push(f)
  // A file's content is not rewritten into the fake root: the script gets the marker's path there.
  f.mkdir('/var/lib/foobar')
  f.put(
    FENCE.script,
    renderTemplate('mysql/db-fence', {
      host: 'web1',
      peers: `${web2.address} ${web3.address}`,
      port: 3306,
      fencedMarker: f.path(FENCE.marker),
      fenceCnf: FENCE.cnf,
    }),
    0o755,
  )
  f.put('/etc/foobar/fence-test/local', c.local ?? '')
  for (const [addr, rec] of Object.entries(c.peers)) if (rec !== undefined) f.put(`/etc/foobar/fence-test/peer-${addr}`, rec)
  for (const [addr, rec] of Object.entries(c.later?.peers ?? {})) f.put(`/etc/foobar/fence-test/later-${addr}`, rec)
  f.command('mysqladmin', 'exit 0')
  f.command(
    'mysql',
    `
d=$FAKE_ROOT/etc/foobar/fence-test
case "$*" in
  *"--protocol=socket"*"SET GLOBAL read_only = OFF"*) echo off > $d/read_only; journal "read_only OFF" ;;
  *"--protocol=socket"*"SELECT generation, writer"*) [ -s $d/local ] && printf '%s\\n' "$(cat $d/local)" ;;
  *" -h "*) for a; do case $prev in -h) peer=$a ;; esac; prev=$a; done
     [ -f $d/peer-$peer ] || exit 1
     [ -s $d/peer-$peer ] && printf '%s\\n' "$(cat $d/peer-$peer)"; exit 0 ;;
  *) echo "mysql (fake): $*" >&2; exit 2 ;;
esac`,
  )
  f.command(
    'sleep',
    `
d=$FAKE_ROOT/etc/foobar/fence-test
n=$(( $(cat $d/sleeps 2>/dev/null || echo 0) + 1 )); echo $n > $d/sleeps
if [ -n "${c.later?.afterSleeps ?? ''}" ] && [ "$n" -ge "${c.later?.afterSleeps ?? 0}" ]; then
  for p in $d/later-*; do [ -f "$p" ] && cp "$p" "$d/peer-\${p#$d/later-}"; done
fi
[ "$n" -lt 50 ] || { echo "sleeping forever" >&2; exit 99; }`,
  )
  return f
}

const runFence = async (f: FakeHost) => {
  const r = await f.run(`sh ${FENCE.script}`, {check: false})
  return {...r, lifted: f.file('/etc/foobar/fence-test/read_only')?.trim() === 'off', marker: f.file(FENCE.marker)?.trim()}
}

describe('the fence script at a database start (run for real)', () => {
  test('the designated writer, confirmed by a peer: takes writes', async () => {
    const r = await runFence(fenceHost({local: '3\tweb1', peers: {[web2.address]: '3\tweb1', [web3.address]: undefined}}))
    expect(r.stdout).toContain(`designated writer (generation 3), confirmed by ${web2.address}: taking writes`)
    expect(r.lifted).toBe(true)
  })

  test('an old primary back after a promotion made while it was down: stays read-only, and marks itself fenced', async () => {
    const f = fenceHost({local: '3\tweb1', peers: {[web2.address]: '4\tweb2', [web3.address]: '3\tweb1'}})
    const r = await runFence(f)
    expect(r.stdout).toContain(
      `superseded: ${web2.address} says the writer is web2 since generation 4 (this host has 3): staying read-only`,
    )
    expect(r.lifted).toBe(false)
    expect(r.marker).toBe(`generation 4: web2 is the writer (seen on ${web2.address})`)
    // From then on it stays read-only without asking, even if no peer knew better (web2 gone, web3 stale).
    f.remove(`/etc/foobar/fence-test/peer-${web2.address}`)
    const again = await runFence(f)
    expect(again.stdout).toContain('fenced by foobar (generation 4: web2 is the writer')
    expect(again.lifted).toBe(false)
  })

  test('a replica (the record names another host), a host marked fenced, a host with no record: read-only', async () => {
    expect((await runFence(fenceHost({local: '3\tweb2', peers: {[web2.address]: '3\tweb2'}}))).lifted).toBe(false)
    const marked = fenceHost({local: '3\tweb1', peers: {[web2.address]: '3\tweb1'}})
    marked.put(FENCE.marker, 'generation 4: web2 is the writer (db promote)\n')
    const r = await runFence(marked)
    expect(r.stdout).toContain('fenced by foobar (generation 4: web2 is the writer (db promote)): staying read-only')
    expect(r.lifted).toBe(false)
    expect((await runFence(fenceHost({local: '', peers: {[web2.address]: '3\tweb1'}}))).lifted).toBe(false)
  })

  test('no other database host answers: waits, read-only, until one confirms', async () => {
    const f = fenceHost({
      local: '3\tweb1',
      peers: {[web2.address]: undefined, [web3.address]: undefined},
      later: {afterSleeps: 3, peers: {[web3.address]: '3\tweb1'}},
    })
    const r = await runFence(f)
    expect(r.stdout).toContain('no other database host answers')
    expect(f.file('/etc/foobar/fence-test/sleeps')?.trim()).toBe('3')
    expect(r.stdout).toContain(`confirmed by ${web3.address}: taking writes`)
    expect(r.lifted).toBe(true)
  })
})

/* ---- db promote when the old primary's host answers but its database does not. ---- */

describe('db promote with the old primary’s database dead', () => {
  let restore: () => void
  beforeEach(() => {
    restore = fastTimers()
  })
  afterEach(() => restore())

  function scripted(h: Host, s: {up: boolean; readOnly: boolean; writer?: string; slave?: boolean}) {
    const f = new FakeHost(h, {shell: false, answer: {code: 0, stdout: '', stderr: ''}})
    fakes.push(f)
    const state = {...s, fenced: undefined as string | undefined, stopped: false}
    f.on(
      (c) => c.script.includes('mysqladmin --loose-skip-ssl --connect-timeout=3 ping'),
      () => ({
        code: 0,
        stdout: [
          state.up ? 'up' : 'down',
          ...(state.up && state.writer ? [`writer ${state.writer}`] : []),
          ...(state.up && state.slave
            ? ['slave Master_Host 10.77.0.12', 'slave Slave_IO_Running Yes', 'slave Slave_SQL_Running Yes', 'slave Using_Gtid Slave_Pos']
            : []),
          ...(state.up ? [`vars ${state.readOnly ? 1 : 0} 2 0-1-5 0-1-5`] : []),
          ...(state.fenced ? [`fenced ${state.fenced}`] : []),
          '',
        ].join('\n'),
        stderr: '',
      }),
    )
    f.on(/db-fenced'?$/, (c) => {
      if (c.script.startsWith('rm')) state.fenced = undefined
      else state.fenced = (c.stdin ?? '').trim()
      return {code: 0, stdout: '', stderr: ''}
    })
    f.on(/^systemctl kill -s KILL mariadb/, () => {
      state.stopped = true
      return {code: 0, stdout: '', stderr: ''}
    })
    return {f, state}
  }

  function cluster() {
    const old = scripted(web1, {up: false, readOnly: false})
    const target = scripted(web2, {up: true, readOnly: true, writer: '1 web1', slave: true})
    const other = scripted(web3, {up: true, readOnly: true, writer: '1 web1', slave: true})
    const by = new Map([old, target, other].map((x) => [x.f.host.name, x.f]))
    const steps: string[] = []
    const run = (force: boolean) =>
      promote(inv, web2, async (h) => by.get(h.name)!, PASSWORD, {force, timeoutMs: 100, step: (s) => steps.push(s)})
    return {old, target, other, run, steps}
  }

  test('refused without --force, with what to do; nothing changed anywhere (the marker taken back)', async () => {
    const c = cluster()
    const error = await c.run(false).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Failure)
    expect((error as Error).message).toBe(
      "web1's database does not answer (its host does: mysqld is down or hung): cannot prove web2 has every transaction it committed. Start it (`systemctl start mariadb` on web1) and promote again, or use --force: web1's database is then stopped and stays read-only (fenced) until it is repointed",
    )
    expect(c.old.state).toMatchObject({fenced: undefined, stopped: false})
    expect(c.target.f.log.filter((x) => x.stdin !== undefined)).toEqual([])
  })

  test('with --force: the old primary marked fenced and stopped, the replica promoted at a higher generation', async () => {
    const c = cluster()
    const r = await c.run(true)
    expect(r).toMatchObject({newPrimary: 'web2', oldPrimaryFenced: true, oldPrimaryStopped: true, repointed: ['web3'], generation: 2})
    expect(c.old.state.fenced).toMatch(/^generation 2: web2 is the writer \(db promote, /)
    expect(c.old.state.stopped).toBe(true)
    const sql = c.target.f.log.flatMap((x) => (x.stdin ? [x.stdin] : [])).join('\n')
    expect(sql).toContain(`INSERT INTO ${FENCE.database}.writer (id, generation, writer) VALUES (1, 2, 'web2') ON DUPLICATE KEY UPDATE`)
    expect(sql).toContain('SET GLOBAL read_only = OFF;')
    // Fenced (marked and stopped) before anything changed on the replica.
    const stopped = c.old.f.log.find((x) => x.script.startsWith('systemctl kill'))!.seq
    const promoted = c.target.f.log.find((x) => x.stdin?.startsWith('STOP SLAVE'))!.seq
    expect(stopped).toBeLessThan(promoted)
  })
})

/* ---- db status's verdict. ---- */

describe('assessTopology (db status)', () => {
  const ok = (h: string, s: Partial<DbHostStatus>): DbHostStatus => ({
    host: h,
    role: h === 'web1' ? 'primary' : 'replica',
    up: true,
    readOnly: true,
    writer: {generation: 1, name: 'web1'},
    ...s,
  })
  const replica = (h: string, s: Partial<DbHostStatus> = {}) =>
    ok(h, {replicatingFrom: web1.address, ioThread: 'Yes', sqlThread: 'Yes', lagSeconds: 0, ...s})
  const healthy = () => [ok('web1', {readOnly: false, semiSync: {master: 'ON'}}), replica('web2'), replica('web3')]

  test('one designated writer, replicas replicating from it: no problem', () => {
    expect(assessTopology(inv, healthy(), {maxLagSeconds: 30})).toEqual({
      writer: {generation: 1, name: 'web1'},
      writable: ['web1'],
      problems: [],
    })
  })

  test('each wrong topology is named with what to do', () => {
    const problems = (s: DbHostStatus[]) =>
      assessTopology(inv, s, {maxLagSeconds: 30}).problems.map((p) => `${p.hosts.join(',')}: ${p.problem}`)
    const [w1, w2, w3] = healthy()
    expect(problems([w1!, {...w2!, readOnly: false}, w3!])).toEqual(['web1,web2: more than one host takes writes: web1, web2'])
    expect(problems([{...w1!, readOnly: true}, w2!, w3!])).toEqual(['web1: the designated writer web1 is read-only: writes fail'])
    expect(problems([w1!, replica('web2', {sqlThread: 'No', lastError: 'Duplicate entry'}), w3!])).toEqual([
      'web2: replication stopped: IO Yes, SQL No: Duplicate entry',
    ])
    expect(problems([w1!, replica('web2', {lagSeconds: 31}), replica('web3', {lagSeconds: null})])).toEqual([
      'web2: lag 31 s (more than 30 s)',
      'web3: lag unknown (more than 30 s)',
    ])
    expect(problems([w1!, ok('web2', {fenced: 'generation 2: web3 is the writer'}), w3!])).toEqual([
      'web2: not replicating (fenced: generation 2: web3 is the writer)',
    ])
    expect(problems([{...w1!, semiSync: {master: 'OFF'}}, w2!, w3!])).toEqual([
      'web1: semi-synchronous replication fell back to asynchronous on web1 (no replica acknowledged within 10000 ms): a failover now may lose acknowledged writes',
    ])
    expect(problems([{...w1!, semiSync: {master: 'ON', clients: 0}}, w2!, w3!])).toEqual([
      'web1: no replica is connected to the writer web1 for semi-synchronous replication: its next write waits 10000 ms for one, then goes on asynchronously (a failover now may lose acknowledged writes)',
    ])
    expect(problems([{...w1!, semiSync: {master: 'ON', clients: 2}}, w2!, w3!])).toEqual([])
    expect(problems([w1!, {host: 'web2', role: 'replica', up: false, error: 'connect ECONNREFUSED'}, w3!])).toEqual([
      'web2: unreachable: connect ECONNREFUSED',
    ])
  })

  test('the designated writer is the highest generation any host has, whatever the inventory says', () => {
    const t = assessTopology(
      inv,
      [
        ok('web1', {readOnly: true, fenced: 'generation 2: web2'}),
        {...replica('web2'), replicatingFrom: undefined, readOnly: false, writer: {generation: 2, name: 'web2'}},
      ],
      {maxLagSeconds: 30},
    )
    expect(t.writer).toEqual({generation: 2, name: 'web2'})
    expect(t.problems.map((p) => p.problem)).toEqual(['not replicating (fenced: generation 2: web2)'])
  })
})
