import {Failure} from '../../util/errors.js'
import {
  LIST_DATABASES,
  MYSQL,
  type DbAction,
  type DbFacts,
  changeMasterSql,
  dbFactsScript,
  dumpCommand,
  parseDbFacts,
  planReplication,
  replicationPeers,
  usersSql,
} from './replication.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {shq} from '../../util/shell.js'

export async function dbFacts(conn: Runner, inv: Inventory): Promise<DbFacts> {
  const r = await conn.run(dbFactsScript(inv.mysql!.replicationUser))
  return parseDbFacts(r.stdout.split('\n').filter(Boolean), inv.mysql!.replicationUser)
}

async function sql(conn: Runner, statements: string): Promise<string> {
  return (await conn.run(`${MYSQL}`, {stdin: statements})).stdout
}

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

async function waitReplicating(replica: Runner, inv: Inventory, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const f = await dbFacts(replica, inv)
    if (f.slave.Slave_IO_Running === 'Yes' && f.slave.Slave_SQL_Running === 'Yes') return
    if (Date.now() > deadline) {
      const err = f.slave.Last_IO_Error || f.slave.Last_SQL_Error || `IO ${f.slave.Slave_IO_Running}, SQL ${f.slave.Slave_SQL_Running}`
      throw new Failure(`${replica.host.name}: replication did not start: ${err}`)
    }
    await new Promise((r) => setTimeout(r, 1000))
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
): Promise<void> {
  const mysql = inv.mysql!
  for (const a of actions) {
    if (a.kind === 'users') {
      step(`replication user ${mysql.replicationUser} for ${a.hosts.join(', ')} (TLS required)`)
      await sql(conn, usersSql(mysql.replicationUser, password, a.hosts))
      continue
    }
    const primary = inv.hosts.find((h) => h.name === a.from)!
    await assertReachable(conn, primary, mysql.port)
    if (a.kind === 'seed') await seed(await connect(primary), conn, step)
    step(`replicating from ${primary.name} (GTID, TLS)${a.kind === 'configure' ? `: ${a.why}` : ''}`)
    await sql(conn, changeMasterSql(primary, mysql.replicationUser, password, mysql.port))
    await waitReplicating(conn, inv)
  }
}

/** Plans and applies replication for the inventory's database hosts: primary first, then each replica. */
export async function convergeReplication(
  inv: Inventory,
  hosts: Host[],
  connect: (h: Host) => Promise<Runner>,
  password: string,
  step: (host: string, s: string) => void,
): Promise<Record<string, string>> {
  const failed: Record<string, string> = {}
  const ordered = replicationPeers(inv)
    .filter((h) => hosts.includes(h))
    .sort((a, b) => (a.db!.role === 'primary' ? -1 : b.db!.role === 'primary' ? 1 : 0))
  for (const host of ordered) {
    try {
      const conn = await connect(host)
      const actions = planReplication(inv, host, await dbFacts(conn, inv), password)
      if (actions.length) await applyReplication(inv, host, actions, conn, connect, password, (s) => step(host.name, s))
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
  oldPrimaryFenced: boolean
  repointed: string[]
  position: string
}

/**
 * A controlled failover: fence the old primary (read-only) if reachable, wait until the replica has every
 * transaction the old primary committed, promote it, repoint the other database hosts (the old primary too).
 * Refuses when that cannot be proven, unless forced.
 */
export async function promote(
  inv: Inventory,
  target: Host,
  connect: (h: Host) => Promise<Runner>,
  password: string,
  o: PromoteOptions,
): Promise<PromoteResult> {
  const mysql = inv.mysql!
  const old = inv.hosts.find((h) => h.name === mysql.primary)!
  const replica = await connect(target)
  let oldConn: Runner | undefined
  try {
    oldConn = await connect(old)
  } catch (error) {
    if (!o.force)
      throw new Failure(
        `the primary ${old.name} is unreachable (${(error as Error).message}): cannot prove ${target.name} has every committed transaction; use --force to promote anyway`,
      )
  }
  let position = ''
  if (oldConn) {
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
          await sql(oldConn, 'SET GLOBAL read_only = OFF;')
          throw new Failure(
            `${target.name} has ${f.gtidSlavePos || 'nothing'} of ${old.name}'s ${position} after ${o.timeoutMs / 1000}s${f.slave.Last_IO_Error ? ` (${f.slave.Last_IO_Error})` : ''}: promoting would lose committed transactions; ${old.name} is writable again. Use --force to promote anyway.`,
          )
        }
        break
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  o.step(`promoting ${target.name}`)
  await sql(replica, 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF;')
  // The new topology: the new primary needs replication users for every other database host (old primary too).
  const others = replicationPeers(inv).filter((h) => h !== target)
  await sql(
    replica,
    usersSql(
      mysql.replicationUser,
      password,
      others.map((h) => h.address),
    ),
  )
  const repointed: string[] = []
  for (const h of others) {
    if (h === old && !oldConn) continue
    o.step(`repointing ${h.name} to ${target.name}`)
    const c = h === old ? oldConn! : await connect(h)
    await sql(c, 'SET GLOBAL read_only = ON;')
    await sql(c, changeMasterSql(target, mysql.replicationUser, password, mysql.port))
    await waitReplicating(c, inv)
    repointed.push(h.name)
  }
  return {newPrimary: target.name, oldPrimary: old.name, oldPrimaryFenced: oldConn !== undefined, repointed, position}
}
