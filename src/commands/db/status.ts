import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {ExitCode, UserError} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {type DbHostStatus, dbFacts, dbHostStatus} from '../../components/mysql/replicate.js'
import {type Topology, type TopologyProblem, assessTopology} from '../../components/mysql/topology.js'
import {pool} from '../../util/pool.js'
import {loadInventory} from '../../inventory/index.js'
import {type Runner, sshTransport} from '../../remote/connection.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {type MemberStatus, assessGalera, galeraArbitrator, galeraMembers, isGalera, memberStatus} from '../../components/galera/cluster.js'
import {restartFiles} from '../../components/galera/index.js'
import {memberFacts} from '../../components/galera/converge.js'
import {mysqlConfigPath} from '../../components/mysql/index.js'

export default class DbStatus extends FoobarCommand<typeof DbStatus> {
  static summary = 'Per database host: role, writable or fenced, replication threads, GTID positions, lag, TLS, semi-sync.'
  static description =
    'Exits 0 when the topology is right: one writer and it is the designated one, every other host read-only and replicating from it within --max-lag, semi-sync not fallen back. Otherwise it names each problem and what to do, and exits 1 (every host concerned) or 3.'
  static flags = {
    ...connectFlags,
    limit: limitFlag,
    'max-lag': Flags.integer({summary: 'Seconds of replica lag counted as a problem.', default: 30, min: 0}),
  }

  async run(): Promise<{hosts: DbHostStatus[]} & Topology> {
    const inv = await loadInventory(this.flags.inventory)
    const dbHosts = inv.hosts.filter((h) => h.db)
    if (!inv.mysql || dbHosts.length === 0) throw new UserError('no database hosts in the inventory (mysql.primary / mysql.replicas)')
    // --limit selects as everywhere (names or roles), then the database hosts among the selection.
    const selected = this.limitHosts(inv, this.flags.limit)
    const hosts = selected.filter((h) => h.db)
    if (hosts.length === 0) {
      throw new UserError(`--limit ${this.flags.limit!.join(',')}: none of the selected hosts is a database host`, [
        `database hosts: ${dbHosts.map((h) => h.name).join(', ')}`,
      ])
    }
    const notDb = selected.filter((h) => !h.db)
    if (this.flags.limit && notDb.length > 0) this.warn(`not database hosts, left out: ${notDb.map((h) => h.name).join(', ')}`)
    await this.requireLocalFiles(inv, hosts)
    if (isGalera(inv)) return this.galera(inv, hosts) as never
    const statuses = await pool(hosts, this.flags.concurrency, async (h): Promise<DbHostStatus> => {
      let conn: Runner | undefined
      try {
        conn = await sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}).open(h)
        return dbHostStatus(h, await dbFacts(conn, inv))
      } catch (error) {
        return {host: h.name, role: h.db!.role, up: false, error: (error as Error).message}
      } finally {
        conn?.close()
      }
    })
    const topology = assessTopology(inv, statuses, {maxLagSeconds: this.flags['max-lag']})
    if (!this.jsonEnabled()) {
      for (const s of statuses) {
        if (s.error) {
          this.log(`${s.host} (${s.role}): ERROR ${s.error}`)
          continue
        }
        const repl = s.replicatingFrom
          ? `from ${s.replicatingFrom}, IO ${s.ioThread}, SQL ${s.sqlThread}, lag ${s.lagSeconds ?? 'unknown'}s, TLS ${s.tls ? 'yes' : 'NO'}`
          : 'not replicating'
        const semi =
          s.semiSync?.master === 'ON'
            ? ', semi-sync on'
            : s.semiSync?.master === 'OFF' && !s.readOnly
              ? ', semi-sync OFF (asynchronous)'
              : ''
        this.log(
          `${s.host} (${s.role}): ${s.up ? 'up' : 'DOWN'}, ${s.readOnly ? 'read-only' : 'writable'}${s.fenced ? ' (fenced)' : ''}${semi}, ${repl}; gtid binlog ${s.gtidBinlogPos || '-'}, slave ${s.gtidSlavePos || '-'}${s.lastError ? `; last error: ${s.lastError}` : ''}`,
        )
      }
      this.log(
        topology.writer
          ? `designated writer: ${topology.writer.name} (generation ${topology.writer.generation}); taking writes: ${topology.writable.join(', ') || 'none'}`
          : `no designated writer recorded yet (foobar provision records ${inv.mysql.primary}); taking writes: ${topology.writable.join(', ') || 'none'}`,
      )
    }
    const result = {hosts: statuses, ...topology}
    this.problems(result, topology.problems, statuses.length, 'database topology not right')
    return result
  }

  /** Prints each problem with its advice; any problem: exit 1 when every host is concerned, else 3. */
  private problems<T>(result: T, problems: TopologyProblem[], hosts: number, what: string): void {
    if (!this.jsonEnabled()) for (const p of problems) this.log(`PROBLEM ${p.hosts.join(', ')}: ${p.problem}\n  -> ${p.advice}`)
    if (problems.length === 0) return
    const concerned = new Set(problems.flatMap((p) => p.hosts))
    const failed = Object.fromEntries(
      [...concerned].map((h) => [
        h,
        problems
          .filter((p) => p.hosts.includes(h))
          .map((p) => p.problem)
          .join('; '),
      ]),
    )
    this.outcome(
      result,
      concerned.size >= hosts ? ExitCode.failure : ExitCode.partial,
      `${what}: ${problems.map((p) => p.problem).join('; ')}`,
      {
        failed,
        quiet: true,
      },
    )
  }

  /** topology: galera: each member's state in the cluster. */
  private async galera(inv: Inventory, hosts: Host[]) {
    const files = restartFiles(mysqlConfigPath(inv))
    const statuses = await pool(hosts, this.flags.concurrency, async (h): Promise<MemberStatus> => {
      let conn: Runner | undefined
      try {
        conn = await sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}).open(h)
        return memberStatus(h.name, await memberFacts(conn, files))
      } catch (error) {
        return {host: h.name, role: 'member', up: false, error: (error as Error).message}
      } finally {
        conn?.close()
      }
    })
    const cluster = assessGalera(inv, statuses)
    if (!this.jsonEnabled()) {
      for (const s of statuses) {
        if (s.error) this.log(`${s.host} (member): ERROR ${s.error}`)
        else if (!s.up) this.log(`${s.host} (member): DOWN (${s.service})`)
        else
          this.log(
            `${s.host} (member): ${s.clusterStatus ?? 'not in a cluster'}, ${s.state ?? '-'}, cluster of ${s.clusterSize ?? '-'}, last committed ${s.lastCommitted ?? '-'}${s.ready ? ', takes writes' : ', refuses writes'}`,
          )
      }
      const arb = galeraArbitrator(inv)
      this.log(
        `galera cluster ${inv.mysql!.clusterName}: ${galeraMembers(inv).length} members${arb ? ` and the arbitrator ${arb.name}` : ''}; taking writes: ${cluster.writable.join(', ') || 'none'} (the endpoint sends them to the first of ${galeraMembers(
          inv,
        )
          .map((h) => h.name)
          .join(', ')} that is synced)`,
      )
    }
    const result = {topology: 'galera' as const, hosts: statuses, writable: cluster.writable, problems: cluster.problems}
    this.problems(result, cluster.problems, statuses.length, 'galera cluster not right')
    return result
  }
}
