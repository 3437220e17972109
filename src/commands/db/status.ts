import {FoobarCommand} from '../../cli/base.js'
import {ExitCode, UserError} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {type DbHostStatus, dbFacts, dbHostStatus} from '../../components/mysql/replicate.js'
import {pool} from '../../util/pool.js'
import {loadInventory} from '../../inventory/index.js'
import {type Runner, sshTransport} from '../../remote/connection.js'

export default class DbStatus extends FoobarCommand<typeof DbStatus> {
  static summary = 'Per database host: role, replication threads, GTID positions, lag, TLS, last error.'
  static flags = {...connectFlags, limit: limitFlag}

  async run(): Promise<{hosts: DbHostStatus[]}> {
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
    if (!this.jsonEnabled()) {
      for (const s of statuses) {
        if (s.error) {
          this.log(`${s.host} (${s.role}): ERROR ${s.error}`)
          continue
        }
        const repl = s.replicatingFrom
          ? `from ${s.replicatingFrom}, IO ${s.ioThread}, SQL ${s.sqlThread}, lag ${s.lagSeconds ?? 'unknown'}s, TLS ${s.tls ? 'yes' : 'NO'}`
          : 'not replicating'
        this.log(
          `${s.host} (${s.role}): ${s.up ? 'up' : 'DOWN'}, ${s.readOnly ? 'read-only' : 'writable'}, ${repl}; gtid binlog ${s.gtidBinlogPos || '-'}, slave ${s.gtidSlavePos || '-'}${s.lastError ? `; last error: ${s.lastError}` : ''}`,
        )
      }
    }
    const bad = statuses.filter((s) => s.error || !s.up || (s.role === 'replica' && (s.ioThread !== 'Yes' || s.sqlThread !== 'Yes')))
    const result = {hosts: statuses}
    if (bad.length) {
      const failed = Object.fromEntries(
        bad.map((s) => [
          s.host,
          s.error ?? (!s.up ? 'down' : `replication IO ${s.ioThread}, SQL ${s.sqlThread}${s.lastError ? `: ${s.lastError}` : ''}`),
        ]),
      )
      this.outcome(
        result,
        bad.length === statuses.length ? ExitCode.failure : ExitCode.partial,
        `database hosts not healthy: ${bad.map((s) => s.host).join(', ')}`,
        {failed, quiet: true},
      )
    }
    return result
  }
}
