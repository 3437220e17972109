import {Failure} from '../../util/errors.js'
import {
  LIST_DATABASES,
  MYSQL,
  type DbAction,
  type DbFacts,
  type FenceAction,
  changeMasterSql,
  dbFactsScript,
  fenceUsersSql,
  planFencing,
  writerRecordSql,
  divergedError,
  dumpCommand,
  parseDbFacts,
  planReplication,
  replicationPeers,
  usersSql,
} from './replication.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {shq} from '../../util/shell.js'
import {sleep} from '../../util/wait.js'
import {FENCE, mysqlService} from './fence.js'

export async function dbFacts(conn: Runner, inv: Inventory): Promise<DbFacts> {
  const r = await conn.run(dbFactsScript(inv.mysql!.replicationUser))
  return parseDbFacts(r.stdout.split('\n').filter(Boolean), inv.mysql!.replicationUser)
}

async function sql(conn: Runner, statements: string): Promise<string> {
  return (await conn.run(`${MYSQL}`, {stdin: statements})).stdout
}

/**
 * A primary's own binlogged statements (its replication accounts, the writer record) while no replica is connected to
 * it, as on a first convergence: without this, the first commit waits the whole semi-sync timeout for an
 * acknowledgement no replica can give (10 s of every first converge), then goes on asynchronously anyway. Semi-sync's
 * wait for an absent replica is switched off for the statements only and put back as it was, by the host's shell,
 * whatever the statements do and even if foobar's connection drops meanwhile (SIGHUP ignored).
 */
export function noReplicaWaitScript(): string {
  const v = '@@GLOBAL.rpl_semi_sync_master_wait_no_slave'
  return [
    "trap '' HUP",
    // A server without the variable (no semi-sync) runs the statements as they are.
    `if fb_was=$(${MYSQL} -e ${shq(`SELECT ${v}`)} 2>/dev/null) && ${MYSQL} -e ${shq(`SET ${v} = OFF`)} 2>/dev/null; then`,
    '  case $fb_was in 0 | 1) ;; *) fb_was=1 ;; esac',
    `  ${MYSQL}; fb_rc=$?`,
    `  ${MYSQL} -e "SET ${v} = $fb_was"`,
    '  exit $fb_rc',
    'fi',
    `exec ${MYSQL}`,
  ].join('\n')
}

/** What a primary's statements run with: see noReplicaWaitScript. */
type SqlOn = (conn: Runner, statements: string) => Promise<string>
const withoutReplicaWait: SqlOn = async (conn, statements) => (await conn.run(noReplicaWaitScript(), {stdin: statements})).stdout

/** Streams a dump from the primary into the replica over the two SSH connections: no copy of the data on disk. */
async function seed(primary: Runner, replica: Runner, step: (s: string) => void): Promise<void> {
  const dbs = (await primary.run(LIST_DATABASES)).stdout.split('\n').filter(Boolean)
  if (dbs.length === 0) {
    // Nothing to copy: the replica starts from the primary's current GTID position.
    const pos = (await sql(primary, 'SELECT @@gtid_binlog_pos;')).trim()
    await sql(replica, `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos = '${pos.replace(/[^0-9,-]/g, '')}';`)
    return
  }
  step(`seeding from ${primary.host.name}: ${dbs.join(', ')}`)
  const {dump, load} = await primary.pipe(dumpCommand(dbs), replica, `${MYSQL} --init-command='SET SESSION sql_log_bin=0'`)
  if (dump.code !== 0) throw new Failure(`seeding from ${primary.host.name} failed: mysqldump: ${dump.stderr.trim()}`)
  if (load.code !== 0) throw new Failure(`seeding ${replica.host.name} failed: ${load.stderr.trim()}`)
}

/** Replication stopped because the replica's history has transactions its primary never had (see divergedError). */
class Diverged extends Failure {
  constructor(
    host: string,
    readonly reason: string,
  ) {
    super(`${host}: replication did not start: ${reason}`)
  }
}

async function waitReplicating(replica: Runner, inv: Inventory, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const f = await dbFacts(replica, inv)
    if (f.slave.Slave_IO_Running === 'Yes' && f.slave.Slave_SQL_Running === 'Yes') return
    // Not waited out: it does not go away by itself.
    const diverged = divergedError(f.slave)
    if (diverged) throw new Diverged(replica.host.name, diverged)
    if (Date.now() > deadline) {
      const err = f.slave.Last_IO_Error || f.slave.Last_SQL_Error || `IO ${f.slave.Slave_IO_Running}, SQL ${f.slave.Slave_SQL_Running}`
      throw new Failure(`${replica.host.name}: replication did not start: ${err}`)
    }
    // Polled, not waited out: the threads usually run within a moment of START SLAVE.
    await sleep(250)
  }
}

/** Can the replica open a TCP connection to the primary's MySQL port? Checked before anything changes. */
async function assertReachable(replica: Runner, primary: Host, port: number): Promise<void> {
  const r = await replica.run(`timeout 5 bash -c ${shq(`echo > /dev/tcp/${primary.address}/${port}`)}`, {check: false})
  if (r.code !== 0) {
    throw new Failure(
      `${replica.host.name} cannot reach the primary ${primary.name} at ${primary.address}:${port} (${r.code === 124 ? 'timed out: a firewall?' : 'refused'}); nothing was changed on ${replica.host.name}`,
    )
  }
}

/** Applies one host's replication actions (the primary's before the replicas'). */
export async function applyReplication(
  inv: Inventory,
  host: Host,
  actions: DbAction[],
  conn: Runner,
  connect: (h: Host) => Promise<Runner>,
  password: string,
  step: (s: string) => void,
  primarySql: SqlOn = sql,
): Promise<void> {
  const mysql = inv.mysql!
  for (const a of actions) {
    if (a.kind === 'users') {
      step(`replication user ${mysql.replicationUser} for ${a.hosts.join(', ')} (TLS required)`)
      await primarySql(conn, usersSql(mysql.replicationUser, password, a.hosts))
      continue
    }
    const primary = inv.hosts.find((h) => h.name === a.from)!
    await assertReachable(conn, primary, mysql.port)
    const replicate = async () => {
      await sql(conn, changeMasterSql(primary, mysql.replicationUser, password, mysql.port))
      await waitReplicating(conn, inv)
    }
    const reseed = async (why: string) => {
      // Its own unreplicated transactions go (they were never acknowledged); its binary log starts again, from the
      // primary's history at the dump (gtid_binlog_state, allowed on an empty binary log): a host repointed to it
      // later (db promote) asks for a position in that history, which its binary log would otherwise not know.
      step(`re-seeding from ${primary.name}: ${why}`)
      await sql(conn, 'STOP SLAVE; RESET SLAVE ALL; RESET MASTER;')
      await seed(await connect(primary), conn, step)
      const pos = (await sql(conn, 'SELECT @@GLOBAL.gtid_slave_pos;')).trim().replace(/[^0-9,-]/g, '')
      await sql(conn, `SET GLOBAL gtid_binlog_state = '${pos}';`)
    }
    if (a.kind === 'reseed') await reseed(a.why)
    if (a.kind === 'seed') await seed(await connect(primary), conn, step)
    step(`replicating from ${primary.name} (GTID, TLS)${a.kind === 'configure' || a.kind === 'rejoin' ? `: ${a.why}` : ''}`)
    try {
      await replicate()
    } catch (error) {
      // A former writer whose binary log ends with transactions the new primary never had: what the plan said.
      if (a.kind !== 'rejoin' || !(error instanceof Diverged)) throw error
      await reseed(`diverged from ${primary.name}: ${error.reason}`)
      await replicate()
    }
  }
}

type Records = Map<string, DbFacts['writer']>

/** Applies one host's fencing actions; lifting read-only only when no other database host knows a later writer. */
async function applyFencing(
  host: Host,
  actions: FenceAction[],
  conn: Runner,
  password: string,
  records: Records,
  step: (s: string) => void,
  primarySql: SqlOn = sql,
) {
  for (const a of actions) {
    if (a.kind === 'fence-users') {
      step(`fence account for ${a.hosts.join(', ')} (TLS required, reads the writer record only)`)
      await sql(conn, fenceUsersSql(password, a.hosts))
    } else if (a.kind === 'designate') {
      step(`recording ${a.writer} as the designated writer (generation 1)`)
      await primarySql(conn, writerRecordSql(a.writer, 1, 'create'))
    } else if (a.kind === 'unfence') {
      for (const [other, w] of records) {
        if (other !== host.name && w && (w.generation > a.generation || (w.generation === a.generation && w.name !== host.name)))
          throw new Failure(
            `not lifting read-only on ${host.name}: ${other} says ${w.name} is the writer since generation ${w.generation} (${host.name} has ${a.generation}); run \`foobar db status\``,
          )
      }
      step(`taking writes: ${host.name} is the designated writer (generation ${a.generation})`)
      await sql(conn, 'SET GLOBAL read_only = OFF;')
    } else {
      step(`fencing ${host.name}: read-only (${a.why})`)
      await sql(conn, 'SET GLOBAL read_only = ON;')
    }
  }
}

/** The database hosts given, the primary first (the others keep their order): the order every convergence applies. */
export const primaryFirst = (hosts: Host[]): Host[] =>
  [...hosts].sort((a, b) => (a.db!.role === 'primary' ? -1 : b.db!.role === 'primary' ? 1 : 0))

/** Plans and applies replication for the inventory's database hosts: primary first, then each replica. */
export async function convergeReplication(
  inv: Inventory,
  hosts: Host[],
  connect: (h: Host) => Promise<Runner>,
  password: string,
  step: (host: string, s: string) => void,
): Promise<Record<string, string>> {
  const failed: Record<string, string> = {}
  const ordered = primaryFirst(replicationPeers(inv).filter((h) => hosts.includes(h)))
  // Every reachable database host's writer record first: the primary lifts read-only only if none knows a later one.
  const records: Records = new Map()
  for (const h of replicationPeers(inv)) {
    try {
      records.set(h.name, (await dbFacts(await connect(h), inv)).writer)
    } catch {
      // Unreachable: its own fence keeps it read-only until it can ask the others.
    }
  }
  for (const host of ordered) {
    try {
      const conn = await connect(host)
      const facts = await dbFacts(conn, inv)
      const fencing = planFencing(inv, host, facts, password)
      const actions = planReplication(inv, host, facts, password)
      const log = (s: string) => step(host.name, s)
      // A primary with semi-sync on and no replica connected (a first convergence): see noReplicaWaitScript.
      const primarySql = host.db!.role === 'primary' && facts.semiSync?.rpl_semi_sync_master_clients === '0' ? withoutReplicaWait : sql
      // The primary's accounts and record before a replica is seeded from it; a replica's fence once it replicates.
      if (host.db!.role === 'primary') await applyFencing(host, fencing, conn, password, records, log, primarySql)
      if (actions.length) await applyReplication(inv, host, actions, conn, connect, password, log, primarySql)
      if (host.db!.role !== 'primary') await applyFencing(host, fencing, conn, password, records, log)
    } catch (error) {
      failed[host.name] = error instanceof Error ? error.message : String(error)
      if (host.db!.role === 'primary') break
    }
  }
  return failed
}

export interface DbHostStatus {
  host: string
  role: string
  up: boolean
  readOnly?: boolean
  replicatingFrom?: string
  ioThread?: string
  sqlThread?: string
  lagSeconds?: number | null
  gtidBinlogPos?: string
  gtidSlavePos?: string
  tls?: boolean
  lastError?: string
  error?: string
  /** This host's copy of the designated writer record. */
  writer?: {generation: number; name: string}
  /** Why it was fenced (db promote's marker), if it was. */
  fenced?: string
  /** Semi-synchronous replication, as the primary (master) and replica (slave) sides report it. */
  semiSync?: {master?: string; slave?: string; clients?: number; asyncCommits?: number}
}

export function dbHostStatus(host: Host, f: DbFacts): DbHostStatus {
  const s = f.slave
  const replicating = Object.keys(s).length > 0
  const lag = s.Seconds_Behind_Master
  return {
    host: host.name,
    role: host.db?.role ?? 'none',
    up: f.up,
    readOnly: f.readOnly,
    replicatingFrom: replicating ? s.Master_Host : undefined,
    ioThread: replicating ? s.Slave_IO_Running : undefined,
    sqlThread: replicating ? s.Slave_SQL_Running : undefined,
    lagSeconds: replicating ? (lag === undefined || lag === 'NULL' ? null : Number(lag)) : undefined,
    gtidBinlogPos: f.gtidBinlogPos,
    gtidSlavePos: f.gtidSlavePos,
    tls: replicating ? s.Master_SSL_Allowed === 'Yes' : undefined,
    lastError: s.Last_IO_Error || s.Last_SQL_Error || undefined,
    writer: f.writer,
    fenced: f.fenced,
    semiSync: f.semiSync && {
      master: f.semiSync.rpl_semi_sync_master_status,
      slave: f.semiSync.rpl_semi_sync_slave_status,
      clients: f.semiSync.rpl_semi_sync_master_clients === undefined ? undefined : Number(f.semiSync.rpl_semi_sync_master_clients),
      asyncCommits: f.semiSync.rpl_semi_sync_master_no_tx === undefined ? undefined : Number(f.semiSync.rpl_semi_sync_master_no_tx),
    },
  }
}

/** True when `have` (a GTID position list) includes every transaction of `want`, domain by domain. */
export function gtidCovers(have: string, want: string): boolean {
  const parse = (p: string) =>
    new Map(
      p
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
        .map((x) => {
          const [d, , n] = x.split('-')
          return [d!, Number(n)] as const
        }),
    )
  const h = parse(have)
  for (const [domain, seq] of parse(want)) if ((h.get(domain) ?? -1) < seq) return false
  return true
}

export interface PromoteOptions {
  force: boolean
  timeoutMs: number
  step: (s: string) => void
}

export interface PromoteResult {
  newPrimary: string
  oldPrimary: string
  /** The old primary was made read-only (its database answered) or stopped (it did not), and marked fenced. */
  oldPrimaryFenced: boolean
  /** Its database did not answer: stopped, so that a hung mysqld cannot wake up writable. */
  oldPrimaryStopped: boolean
  repointed: string[]
  position: string
  /** The designated writer's new generation (foobar_meta.writer). */
  generation: number
}

/**
 * A forced promotion, the old primary's position unknown: what the replica received but has not applied yet (its
 * relay log, which promoting deletes) can hold writes the old primary acknowledged, since semi-sync acknowledges on
 * receipt. Its receiving stops (the old primary is gone or stopped), then the rest is applied, waited for up to the
 * promotion's timeout; what cannot be (the SQL thread stopped on an error) is named and left, as --force says.
 */
async function applyReceived(replica: Runner, inv: Inventory, old: Host, o: PromoteOptions): Promise<void> {
  await sql(replica, 'STOP SLAVE IO_THREAD;')
  const deadline = Date.now() + o.timeoutMs
  let waiting = false
  for (;;) {
    const f = await dbFacts(replica, inv)
    const received = f.slave.Gtid_IO_Pos ?? ''
    if (gtidCovers(f.gtidSlavePos ?? '', received)) return
    const stopped = f.slave.Slave_SQL_Running !== 'Yes'
    if (stopped || Date.now() > deadline) {
      o.step(
        `${replica.host.name} did not apply all it received from ${old.name} (${f.gtidSlavePos || 'nothing'} of ${received})${stopped ? `: its SQL thread stopped${f.slave.Last_SQL_Error ? `: ${f.slave.Last_SQL_Error}` : ''}` : ` after ${o.timeoutMs / 1000}s`}; promoting anyway (--force)`,
      )
      return
    }
    if (!waiting) o.step(`waiting for ${replica.host.name} to apply what it received from ${old.name} (${received})`)
    waiting = true
    await sleep(250)
  }
}

/**
 * A controlled failover: fence the old primary (read-only and marked, or stopped if its database does not answer)
 * if its host is reachable, wait until the replica has every transaction the old primary committed, record the
 * replica as the designated writer with a higher generation, promote it, repoint the other database hosts (the old
 * primary too). Refuses when no loss cannot be proven, unless forced.
 */
export async function promote(
  inv: Inventory,
  target: Host,
  connect: (h: Host) => Promise<Runner>,
  password: string,
  o: PromoteOptions,
): Promise<PromoteResult> {
  const mysql = inv.mysql!
  const svc = mysqlService(inv)
  const old = inv.hosts.find((h) => h.name === mysql.primary)!
  const replica = await connect(target)
  const targetFacts = await dbFacts(replica, inv)
  if (!targetFacts.up) throw new Failure(`${target.name}'s database does not answer: nothing was changed`)
  let oldConn: Runner | undefined
  try {
    oldConn = await connect(old)
  } catch (error) {
    if (!o.force)
      throw new Failure(
        `the primary ${old.name} is unreachable (${(error as Error).message}): cannot prove ${target.name} has every committed transaction; use --force to promote anyway (${old.name} then stays read-only when it comes back: its fence asks the other database hosts first)`,
      )
  }
  const others = replicationPeers(inv).filter((h) => h !== target)
  // The new generation is above every one a reachable database host has seen.
  const generations = [targetFacts.writer?.generation ?? 0]
  const oldFacts = oldConn ? await dbFacts(oldConn, inv) : undefined
  if (oldFacts?.writer) generations.push(oldFacts.writer.generation)
  for (const h of others.filter((x) => x !== old)) {
    const f = await connect(h)
      .then((c) => dbFacts(c, inv))
      .catch(() => undefined)
    if (f?.writer) generations.push(f.writer.generation)
  }
  const generation = Math.max(...generations) + 1
  const marker = `generation ${generation}: ${target.name} is the writer (db promote, ${new Date().toISOString()})`
  let position = ''
  let oldStopped = false
  if (oldConn && oldFacts) {
    // The marker first: from now on the old primary never lifts read-only on its own, whatever happens next.
    await oldConn.run(`mkdir -p ${shq(FENCE.marker.replace(/\/[^/]+$/, ''))} && cat > ${shq(FENCE.marker)}`, {stdin: `${marker}\n`})
    const unfenceOld = async () => {
      await oldConn!.run(`rm -f ${shq(FENCE.marker)}`)
      if (oldFacts.up) await sql(oldConn!, 'SET GLOBAL read_only = OFF;')
    }
    if (!oldFacts.up) {
      if (!o.force) {
        await unfenceOld()
        throw new Failure(
          `${old.name}'s database does not answer (its host does: mysqld is down or hung): cannot prove ${target.name} has every transaction it committed. Start it (\`systemctl start ${svc}\` on ${old.name}) and promote again, or use --force: ${old.name}'s database is then stopped and stays read-only (fenced) until it is repointed`,
        )
      }
      o.step(`fencing ${old.name}: its database does not answer; stopping it (it stays read-only when started again)`)
      await oldConn.run(`systemctl kill -s KILL ${svc} >/dev/null 2>&1; systemctl stop ${svc}`, {check: false})
      oldStopped = true
    } else {
      o.step(`fencing ${old.name}: read-only`)
      await sql(oldConn, 'SET GLOBAL read_only = ON;')
      position = (await sql(oldConn, 'SELECT @@gtid_binlog_pos;')).trim()
      o.step(`waiting for ${target.name} to reach ${position}`)
      const deadline = Date.now() + o.timeoutMs
      for (;;) {
        const f = await dbFacts(replica, inv)
        if (gtidCovers(f.gtidSlavePos ?? '', position)) break
        if (Date.now() > deadline) {
          if (!o.force) {
            await unfenceOld()
            throw new Failure(
              `${target.name} has ${f.gtidSlavePos || 'nothing'} of ${old.name}'s ${position} after ${o.timeoutMs / 1000}s${f.slave.Last_IO_Error ? ` (${f.slave.Last_IO_Error})` : ''}: promoting would lose committed transactions; ${old.name} is writable again. Use --force to promote anyway.`,
            )
          }
          break
        }
        await sleep(500)
      }
    }
  }
  // A replica without replication configured (its facts read at the start) has received nothing.
  if (!position && Object.keys(targetFacts.slave).length > 0) await applyReceived(replica, inv, old, o)
  o.step(`promoting ${target.name} (designated writer, generation ${generation})`)
  // No replica replicates from the new writer yet: its record and the replication users (the new topology: every
  // other database host, the old primary too) are written without semi-sync's wait for one (noReplicaWaitScript),
  // which cost every promotion the whole timeout (10 s). The application's writes come after read_only is lifted,
  // with the setting back: they wait for a replica as before, and the others are repointed next.
  await withoutReplicaWait(
    replica,
    `STOP SLAVE; RESET SLAVE ALL;\n${writerRecordSql(target.name, generation, 'set')}\n${usersSql(
      mysql.replicationUser,
      password,
      others.map((h) => h.address),
    )}`,
  )
  await replica.run(`rm -f ${shq(FENCE.marker)}`)
  await sql(replica, 'SET GLOBAL read_only = OFF;')
  const repointed: string[] = []
  for (const h of others) {
    if (h === old && (!oldConn || oldStopped)) continue
    o.step(`repointing ${h.name} to ${target.name}`)
    const c = h === old ? oldConn! : await connect(h)
    await sql(c, 'SET GLOBAL read_only = ON;')
    // The old primary's position is its own last write (covered by the new writer, waited for above), not the stale
    // position it last replicated at, which the new writer's binary log may not have (a host re-seeded since).
    if (h === old) await sql(c, 'SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos;')
    await sql(c, changeMasterSql(target, mysql.replicationUser, password, mysql.port))
    await waitReplicating(c, inv)
    repointed.push(h.name)
  }
  return {
    newPrimary: target.name,
    oldPrimary: old.name,
    oldPrimaryFenced: oldConn !== undefined,
    oldPrimaryStopped: oldStopped,
    repointed,
    position,
    generation,
  }
}
