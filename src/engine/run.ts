import {type HostDesired, desiredState} from '../components/index.js'
import {type TlsMaterial, prepareTlsMaterial} from '../components/tls/index.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions, connectionCache} from '../remote/connection.js'
import {applyHost} from './apply.js'
import {convergeReplication} from './db.js'
import {readSecret} from '../secrets/index.js'
import {drain, drainedByFoobar, enable, haproxyServing} from '../components/haproxy/runtime.js'
import {type HostFacts, factsScript, parseFacts} from './facts.js'
import {type Change, type HostPlan, factQuery, planHost} from './plan.js'

export type HostStatus = 'unchanged' | 'changed' | 'pending' | 'failed' | 'skipped'

export interface HostResult {
  host: string
  status: HostStatus
  changes: Change[]
  error?: string
  durationMs: number
}

export interface RunOptions extends ConnectOptions {
  apply: boolean
  concurrency: number
  /** Rolling batches of this many hosts; a batch with a failure stops the run. */
  serial?: number
  /** Progress for the UI: host, what it is doing. */
  onStep?: (host: string, step: string) => void
  /** Only these components (e.g. `firewall`). */
  only?: string[]
  /** Called after planning, before applying (for confirmation prompts). Return false to stop. */
  beforeApply?: (plans: HostPlan[]) => Promise<boolean>
}

export interface RunReport {
  hosts: HostResult[]
  durationMs: number
}

export async function gatherFacts(conn: Connection, desired: HostDesired): Promise<HostFacts> {
  const q = factQuery(desired)
  const res = await conn.run(factsScript(q))
  return parseFacts(res.stdout, q)
}

/** Runs `fn` over items with at most `limit` at once. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const workers = Array.from({length: Math.max(1, Math.min(limit, items.length))}, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  })
  await Promise.all(workers)
  return out
}

/**
 * plan (and provision): connect -> facts -> pure plan -> (apply). Hosts run in parallel up to --concurrency, or in
 * rolling batches with --serial; a failing host never stops unrelated hosts within its batch.
 */
export async function runPlan(inventory: Inventory, hosts: Host[], options: RunOptions): Promise<RunReport> {
  const started = Date.now()
  const material: TlsMaterial = prepareTlsMaterial(inventory)
  // Secrets are read before anything is touched: a missing one is bad input (exit 2) and changes nothing.
  const wantsDb = hosts.some((h) => h.db) && (!options.only || options.only.includes('mysql'))
  const replication =
    wantsDb && inventory.mysql && inventory.mysql.replicas.length > 0
      ? {inventory, password: readSecret(inventory.mysql.replicationPassword, 'mysql.replication_password')}
      : undefined
  const batches = options.serial ? chunk(hosts, options.serial) : [hosts]
  const results: HostResult[] = []
  let stopped = false
  for (const batch of batches) {
    if (stopped) {
      results.push(...batch.map((h) => ({host: h.name, status: 'skipped' as const, changes: [], error: 'not run: an earlier batch failed', durationMs: 0})))
      continue
    }
    const connections = new Map<string, Connection>()
    try {
      const planned = await pool(batch, options.concurrency, async (host) => planOne(inventory, host, material, options, connections, replication))
      let proceed = options.apply
      if (proceed && options.beforeApply) {
        const pending = planned.filter((p) => p.plan && p.plan.changes.length > 0).map((p) => p.plan!)
        if (pending.length > 0) proceed = await options.beforeApply(pending)
      }
      const applyOne = async (p: Planned): Promise<HostResult> => {
        if (p.result) return p.result
        const t0 = Date.now()
        const plan = p.plan!
        if (plan.changes.length === 0) return {host: plan.host, status: 'unchanged' as const, changes: [], durationMs: Date.now() - t0 + p.ms}
        if (!proceed) return {host: plan.host, status: 'pending' as const, changes: plan.changes, durationMs: p.ms}
        try {
          const conn = connections.get(plan.host)!
          const replan = async () => planHost(p.desired!, await gatherFacts(conn, p.desired!))
          const host = p.desired!.host
          const fresh = async () => {
            const c = await Connection.open(host, options)
            try {
              await c.run('true', {root: false})
            } finally {
              c.close()
            }
          }
          await applyHost(conn, p.desired!, plan, (s) => options.onStep?.(plan.host, s), replan, fresh)
          options.onStep?.(plan.host, `done: ${plan.changes.length} changes`)
          return {host: plan.host, status: 'changed' as const, changes: plan.changes, durationMs: Date.now() - t0 + p.ms}
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error)
          options.onStep?.(plan.host, `FAILED: ${message}`)
          return {host: plan.host, status: 'failed' as const, changes: plan.changes, error: message, durationMs: Date.now() - t0 + p.ms}
        }
      }
      const batchResults = await applyBatch(inventory, planned, applyOne, proceed, options, connections)
      if (replication) await replicationPhase(inventory, batchResults, replication.password, options, connections)
      results.push(...batchResults)
      if (options.serial && batchResults.some((r) => r.status === 'failed')) stopped = true
    } finally {
      for (const c of connections.values()) c.close()
    }
  }
  return {hosts: results, durationMs: Date.now() - started}
}

export type Planned = {plan?: HostPlan; desired?: HostDesired; result?: HostResult; ms: number}

/**
 * Applies a batch. Web servers with changes behind a serving load balancer roll one at a time (or --serial at a
 * time): drained in HAProxy, changed and reloaded, health-gated by the host's own checks and by HAProxy seeing
 * them UP, then enabled. A server that fails its gate stops the roll and stays drained; the others keep serving.
 */
export async function applyBatch(
  inventory: Inventory,
  planned: Planned[],
  applyOne: (p: Planned) => Promise<HostResult>,
  proceed: boolean,
  options: RunOptions,
  connections: Map<string, Connection>,
): Promise<HostResult[]> {
  const isRolling = (p: Planned) =>
    proceed &&
    p.plan !== undefined &&
    // Replication is the database's business: it does not take the web server out of rotation.
    p.plan.changes.some((c) => c.kind !== 'replication') &&
    p.desired!.host.roles.includes('web') &&
    !p.desired!.host.roles.includes('lb')
  const hasWeb = planned.some((p) => p.desired?.host.roles.includes('web'))
  const lbs = proceed && hasWeb ? await servingLbs(inventory, options, connections) : []
  if (lbs.length === 0) {
    return pool(planned, options.concurrency, applyOne)
  }
  const byHost = new Map<string, HostResult>()
  const rest = planned.filter((p) => !isRolling(p))
  for (const r of await pool(rest, options.concurrency, applyOne)) byHost.set(r.host, r)

  const rolling = planned.filter(isRolling)
  const size = options.serial ?? 1
  let stoppedAt: string | undefined
  for (let i = 0; i < rolling.length; i += size) {
    const group = rolling.slice(i, i + size)
    if (stoppedAt) {
      for (const p of group) byHost.set(p.plan!.host, {host: p.plan!.host, status: 'skipped', changes: p.plan!.changes, error: `not run: the roll stopped at ${stoppedAt}`, durationMs: 0})
      continue
    }
    for (const p of group) {
      for (const lb of lbs) {
        options.onStep?.(p.plan!.host, `draining in ${lb.host.name}`)
        await drain(lb, p.plan!.host)
      }
    }
    for (const r of await pool(group, options.concurrency, applyOne)) {
      if (r.status === 'changed') {
        try {
          for (const lb of lbs) {
            options.onStep?.(r.host, `health gate: waiting for ${lb.host.name} to see it UP`)
            await enable(lb, r.host)
          }
        } catch (error) {
          r.status = 'failed'
          r.error = `health gate at the load balancer: ${error instanceof Error ? error.message : String(error)}; left drained`
        }
      } else if (r.status === 'failed') {
        r.error = `${r.error}; left drained in the load balancer`
      }
      if (r.status === 'failed') stoppedAt ??= r.host
      byHost.set(r.host, r)
    }
  }
  // A server left drained by an earlier stopped roll comes back once its host is healthy and converged again.
  for (const lb of lbs) {
    for (const name of await drainedByFoobar(lb)) {
      const r = byHost.get(name)
      if (r && (r.status === 'unchanged' || r.status === 'changed')) {
        options.onStep?.(name, `enabling again in ${lb.host.name}`)
        await enable(lb, name).catch((e: Error) => {
          r.status = 'failed'
          r.error = e.message
        })
      }
    }
  }
  return planned.map((p) => byHost.get(p.plan?.host ?? p.result!.host) ?? p.result!)
}

/** After the hosts' own changes: replication, primary first, for the database hosts that planned it. */
async function replicationPhase(inventory: Inventory, results: HostResult[], password: string, options: RunOptions, connections: Map<string, Connection>): Promise<void> {
  const todo = results.filter((r) => r.status === 'changed' && r.changes.some((c) => c.kind === 'replication'))
  if (todo.length === 0) return
  const cache = connectionCache(options, connections)
  const hosts = inventory.hosts.filter((h) => todo.some((r) => r.host === h.name))
  const failed = await convergeReplication(inventory, hosts, (h) => cache.get(h), password, (h, s) => options.onStep?.(h, s))
  for (const r of todo) {
    if (failed[r.host]) {
      r.status = 'failed'
      r.error = failed[r.host]
      options.onStep?.(r.host, `FAILED: ${r.error}`)
    }
  }
}

/** Connections to the load balancers whose HAProxy is serving now (nothing to drain before the first provision). */
async function servingLbs(inventory: Inventory, options: RunOptions, connections: Map<string, Connection>): Promise<Connection[]> {
  const cache = connectionCache(options, connections)
  const out: Connection[] = []
  for (const lb of inventory.hosts.filter((h) => h.roles.includes('lb'))) {
    try {
      const conn = await cache.get(lb)
      if (await haproxyServing(conn)) out.push(conn)
    } catch {
      // An unreachable LB sends no traffic to drain; its own failure is reported where it is in the run.
    }
  }
  return out
}

async function planOne(
  inventory: Inventory,
  host: Host,
  material: TlsMaterial,
  options: RunOptions,
  connections: Map<string, Connection>,
  replication?: {inventory: Inventory; password: string},
): Promise<Planned> {
  const t0 = Date.now()
  try {
    options.onStep?.(host.name, 'connecting')
    const conn = await Connection.open(host, options)
    connections.set(host.name, conn)
    const controlAddress = await conn.clientAddress()
    const desired = desiredState(inventory, host, {material, controlAddress, only: options.only})
    if (replication && host.db) desired.replication = replication
    options.onStep?.(host.name, 'gathering facts')
    const facts = await gatherFacts(conn, desired)
    const plan = planHost(desired, facts)
    options.onStep?.(host.name, plan.changes.length ? `${plan.changes.length} changes planned` : 'no changes')
    return {plan, desired, ms: Date.now() - t0}
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    options.onStep?.(host.name, `FAILED: ${message}`)
    return {result: {host: host.name, status: 'failed', changes: [], error: message, durationMs: Date.now() - t0}, ms: 0}
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
