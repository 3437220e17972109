import type {Component, LiveAction} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {readSecret} from '../../secrets/index.js'
import {Failure} from '../../util/errors.js'
import {gtidCovers, primaryFirst} from '../mysql/replicate.js'
import {type AppDbAction, type AppDbSettings, appDbFactsScript, appDbSql, describeAppDb, parseAppDbFacts, planAppDb} from './account.js'

/*
 * The default app's database (issue 17, "the app uses the database"): on when `mysql.app` is in the inventory.
 * The app's side (its settings, the password file, the CA, python3-pymysql) is rendered by the app component;
 * this one makes the database, the table and the least-privilege account on the database hosts, after
 * replication, the primary first (see account.ts). It never takes a web server out of rotation.
 */

const settings = (inv: Inventory): AppDbSettings => ({user: inv.mysql!.app!.user, database: inv.mysql!.app!.database})

async function facts(conn: Runner, s: AppDbSettings) {
  const r = await conn.run(appDbFactsScript(s))
  return parseAppDbFacts(r.stdout.split('\n').filter(Boolean))
}

/** How long a replica is given to receive what the primary just did before its own accounts are checked. */
const CATCH_UP_MS = 15_000

async function waitCaughtUp(replica: Runner, position: string): Promise<void> {
  const deadline = Date.now() + CATCH_UP_MS
  while (Date.now() < deadline) {
    const r = await replica.run(`mysql --protocol=socket --loose-skip-ssl -N -B -e 'SELECT @@gtid_slave_pos'`, {check: false})
    if (r.code === 0 && gtidCovers(r.stdout.trim(), position)) return
    await new Promise((res) => setTimeout(res, 200))
  }
  // Not replicating (or far behind): its accounts are made here, which is what such a replica needs anyway.
}

/** Re-reads each host's facts, plans again and applies: the primary first, then the replicas once they caught up. */
export async function convergeAppDb(
  inv: Inventory,
  hosts: Host[],
  connect: (h: Host) => Promise<Runner>,
  password: string,
  step: (host: string, s: string) => void,
): Promise<Record<string, string>> {
  const s = settings(inv)
  const failed: Record<string, string> = {}
  const ordered = primaryFirst(hosts)
  let position: string | undefined
  for (const host of ordered) {
    try {
      const conn = await connect(host)
      const replica = host.db!.role !== 'primary'
      if (replica && position) await waitCaughtUp(conn, position)
      const actions = planAppDb(inv, host, await facts(conn, s), password)
      if (actions.some((a) => a.kind === 'read-only')) throw new Failure(describeAppDb({kind: 'read-only'}, s, host))
      if (actions.length) {
        for (const a of actions) step(host.name, describeAppDb(a, s, host))
        await conn.run('mysql --protocol=socket --loose-skip-ssl -N -B', {stdin: appDbSql(actions, s, password, replica)})
      }
      if (!replica)
        position = (await conn.run(`mysql --protocol=socket --loose-skip-ssl -N -B -e 'SELECT @@gtid_binlog_pos'`)).stdout.trim()
    } catch (error) {
      failed[host.name] = error instanceof Error ? error.message : String(error)
    }
  }
  return failed
}

export const appDb: Component = {
  name: 'app-db',
  after: ['replication'],
  rolling: 'none',
  appliesTo: (host, inv) => inv.mysql?.app !== undefined && host.db !== undefined,
  secrets: ({inventory}) => (inventory.mysql?.app ? [{field: 'mysql.app.password', ref: inventory.mysql.app.password}] : []),
  live: {
    prepare: (inventory) => {
      if (!inventory.mysql?.app) return undefined
      // Read before anything is touched (a missing secret is bad input); kept in memory, sent only on stdin.
      const password = readSecret(inventory.mysql.app.password, 'mysql.app.password')
      const s = settings(inventory)
      return {
        script: () => appDbFactsScript(s),
        plan: (ctx, lines): LiveAction[] =>
          planAppDb(inventory, ctx.host, parseAppDbFacts(lines), password).map((a: AppDbAction) => ({
            kind: a.kind,
            summary: describeAppDb(a, s, ctx.host),
            data: {...a},
          })),
        converge: (ctx) => convergeAppDb(inventory, ctx.hosts, ctx.connect, password, ctx.step),
      }
    },
  },
}
