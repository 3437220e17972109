import type {Inventory} from '../../inventory/index.js'
import type {DbHostStatus} from './replicate.js'

export interface TopologyProblem {
  /** The hosts it concerns. */
  hosts: string[]
  problem: string
  /** What to do about it. */
  advice: string
}

export interface Topology {
  /** The designated writer: the record with the highest generation any database host has. */
  writer?: {name: string; generation: number}
  /** The hosts that take writes now. */
  writable: string[]
  problems: TopologyProblem[]
}

/**
 * Pure: is the database topology right? One writer, and it is the designated one; every other host read-only and
 * replicating from it without errors and within `maxLagSeconds`; semi-synchronous replication not fallen back to
 * asynchronous. Each problem says what to do.
 */
export function assessTopology(inv: Inventory, statuses: DbHostStatus[], o: {maxLagSeconds: number}): Topology {
  const problems: TopologyProblem[] = []
  const records = statuses.flatMap((s) => (s.writer ? [s.writer] : []))
  const writer = records.sort((a, b) => b.generation - a.generation)[0]
  const designated = writer?.name ?? inv.mysql?.primary
  const up = statuses.filter((s) => !s.error && s.up)
  const writable = up.filter((s) => s.readOnly === false).map((s) => s.host)
  for (const s of statuses) {
    if (s.error || !s.up)
      problems.push({
        hosts: [s.host],
        problem: s.error ? `unreachable: ${s.error}` : 'database down',
        advice: s.error
          ? `check the host and SSH (foobar verify --limit ${s.host})`
          : `start it on ${s.host}; it comes back read-only (fenced)`,
      })
  }
  if (writable.length > 1)
    problems.push({
      hosts: writable,
      problem: `more than one host takes writes: ${writable.join(', ')}`,
      advice: `make every host but ${designated} read-only now (SET GLOBAL read_only = ON), then compare their GTID positions before repointing`,
    })
  const d = up.find((s) => s.host === designated)
  if (d && d.readOnly)
    problems.push({
      hosts: [d.host],
      problem: `the designated writer ${d.host} is read-only: writes fail`,
      advice: `see why on ${d.host}: journalctl -u foobar-db-fence (it waits for another database host to confirm); foobar provision lifts it once the others agree`,
    })
  const writerAddress = inv.hosts.find((h) => h.name === designated)?.address
  for (const s of up.filter((x) => x.host !== designated)) {
    if (s.readOnly === false) continue
    if (!s.replicatingFrom) {
      problems.push({
        hosts: [s.host],
        problem: `not replicating${s.fenced ? ` (fenced: ${s.fenced})` : ''}`,
        advice: `make the inventory name ${designated} the primary, then foobar provision repoints ${s.host}`,
      })
      continue
    }
    if (s.ioThread !== 'Yes' || s.sqlThread !== 'Yes')
      problems.push({
        hosts: [s.host],
        problem: `replication stopped: IO ${s.ioThread}, SQL ${s.sqlThread}${s.lastError ? `: ${s.lastError}` : ''}`,
        advice: `fix the error above, then foobar provision (it restarts replication; a replica is never re-seeded)`,
      })
    else if (writerAddress && s.replicatingFrom !== writerAddress)
      problems.push({
        hosts: [s.host],
        problem: `replicates from ${s.replicatingFrom}, not from the writer ${designated}`,
        advice: `foobar provision with the inventory naming ${designated} the primary repoints it`,
      })
    else if (s.lagSeconds === null || (s.lagSeconds ?? 0) > o.maxLagSeconds)
      problems.push({
        hosts: [s.host],
        problem: `lag ${s.lagSeconds === null ? 'unknown' : `${s.lagSeconds} s`} (more than ${o.maxLagSeconds} s)`,
        advice: "look at the replica's load and its SQL thread (SHOW PROCESSLIST); promoting it now would wait for it to catch up",
      })
  }
  const semi = d?.semiSync
  const semiSync = inv.mysql?.semiSync.enabled && inv.mysql.engine === 'mariadb' && d && !d.readOnly && statuses.length > 1
  if (semiSync && semi?.master === 'OFF')
    problems.push({
      hosts: [d.host],
      problem: `semi-synchronous replication fell back to asynchronous on ${d.host} (no replica acknowledged within ${inv.mysql!.semiSync.timeoutMs} ms): a failover now may lose acknowledged writes`,
      advice: 'bring a replica back (it switches back on its own once one catches up)',
    })
  // Not fallen back yet only because nothing was written since (a new writer after db promote): the next write waits.
  else if (semiSync && semi?.master === 'ON' && semi.clients === 0)
    problems.push({
      hosts: [d.host],
      problem: `no replica is connected to the writer ${d.host} for semi-synchronous replication: its next write waits ${inv.mysql!.semiSync.timeoutMs} ms for one, then goes on asynchronously (a failover now may lose acknowledged writes)`,
      advice: 'bring a replica back (foobar provision repoints the replicas to the writer)',
    })
  return {writer, writable, problems}
}
