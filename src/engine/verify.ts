import {request} from 'node:https'
import {desiredState} from '../components/index.js'
import {prepareTlsMaterial} from '../components/tls/index.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions} from '../remote/connection.js'
import {shq} from '../render/safe.js'
import {planHost} from './plan.js'
import type {HostFacts} from './facts.js'
import {isContainer} from '../components/virt.js'
import {hardeningChecks} from '../components/hardening/checks.js'
import {webTierChecks} from './web-checks.js'
import {monitoringChecks, monitoringServerConnection} from './monitoring-checks.js'
import {verifyDatabase} from './db-checks.js'
import {gatherFacts, pool} from './run.js'

export interface CheckResult {
  host: string
  check: string
  ok: boolean
  detail: string
  /** Switched off in the inventory or not applicable here, with the reason in `detail` (not a failure). */
  skipped?: boolean
}

interface Check {
  name: string
  /** `final`: the answer cannot change by waiting (a score), so it is not retried. */
  run: () => Promise<{ok: boolean; detail: string; skipped?: boolean; final?: boolean}>
}

/** GET https://address:port/path with SNI and Host set to the site name, trusting `ca`. */
export function httpsProbe(address: string, port: number, servername: string, path: string, ca: string, timeoutMs = 5000): Promise<{status: number; headers: Record<string, unknown>; body: string}> {
  return new Promise((resolve, reject) => {
    const req = request({host: address, port, path, servername, ca, headers: {Host: servername}, timeout: timeoutMs, agent: false}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body}))
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** Read-only checks per host and component, retried until they pass or the timeout runs out. */
export async function verifyHosts(inv: Inventory, hosts: Host[], o: ConnectOptions & {timeoutMs: number; concurrency: number; lynis?: boolean}): Promise<CheckResult[]> {
  const material = prepareTlsMaterial(inv)
  // One connection to the monitoring server, shared: clients are checked from where Prometheus scrapes them.
  const mon = await monitoringServerConnection(inv, o)
  const perHost = await pool(hosts, o.concurrency, async (host) => {
    let conn: Connection
    try {
      conn = await Connection.open(host, o)
    } catch (error) {
      return [{host: host.name, check: 'ssh', ok: false, detail: error instanceof Error ? error.message : String(error)}]
    }
    try {
      const desired = desiredState(inv, host, {material, controlAddress: await conn.clientAddress()})
      const facts = sharedFacts(() => gatherFacts(conn, desired))
      const checks: Check[] = [
        {
          name: 'config',
          run: async () => {
            const drift = planHost(desired, await facts.get()).changes.filter((c) => c.kind !== 'reload' && c.kind !== 'firewall')
            if (drift.length === 0) return {ok: true, detail: 'matches the inventory'}
            facts.drop()
            return {ok: false, detail: `${drift.length} differences from the inventory (run foobar plan)`}
          },
        },
        {
          name: 'firewall',
          run: async () => {
            const fw = planHost(desired, await facts.get()).changes.find((c) => c.kind === 'firewall')
            if (!fw) return {ok: true, detail: `${host.firewall.backend} active, rules as in the inventory`}
            facts.drop()
            return {ok: false, detail: `drift: ${fw.reason}`}
          },
        },
        ...desired.services.map((s) => ({
          name: `service ${s.name}`,
          run: async () => {
            if (s.notInContainer && isContainer((await facts.get()).virt)) {
              return {ok: true, skipped: true, detail: `not run: ${s.notInContainer}`}
            }
            const r = await conn.run(`systemctl is-active ${shq(s.name)} && ${s.health ?? 'true'}`, {check: false})
            return r.code === 0 ? {ok: true, detail: 'active and healthy'} : {ok: false, detail: (r.stderr || r.stdout).trim().split('\n').pop() || 'not active'}
          },
        })),
      ]
      if (desired.hardening) checks.push(...hardeningChecks(host, conn, desired.hardening, {lynis: o.lynis ?? true, facts}))
      if (host.roles.includes('lb')) checks.push(...webTierChecks(inv, host, conn, material.backendCa))
      checks.push(...monitoringChecks(host, conn, mon))
      return await Promise.all(checks.map((c) => retry(host.name, c, o.timeoutMs)))
    } finally {
      conn.close()
    }
  })
  mon?.conn.close()
  const replicas = hosts.filter((h) => h.db?.role === 'replica')
  const dbChecks = inv.mysql?.primary && replicas.length ? await verifyDatabase(inv, replicas, {...o, timeoutMs: Math.max(o.timeoutMs, 5000)}) : []
  return [...perHost.flat(), ...dbChecks]
}

/**
 * A host's facts, read once for all the checks that need them. A check that fails drops them, so its retry reads
 * the host again instead of judging the same old answer; a read that failed is dropped too.
 */
function sharedFacts(read: () => Promise<HostFacts>): {get: () => Promise<HostFacts>; drop: () => void} {
  let current: Promise<HostFacts> | undefined
  const drop = () => {
    current = undefined
  }
  return {
    get: () =>
      (current ??= read().catch((error: unknown) => {
        drop()
        throw error
      })),
    drop,
  }
}

async function retry(host: string, check: Check, timeoutMs: number): Promise<CheckResult> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let r: Awaited<ReturnType<Check['run']>>
    try {
      r = await check.run()
    } catch (error) {
      r = {ok: false, detail: error instanceof Error ? error.message : String(error)}
    }
    if (r.ok || r.final || Date.now() > deadline) return {host, check: check.name, ok: r.ok, detail: r.detail, ...(r.skipped ? {skipped: true} : {})}
    await new Promise((res) => setTimeout(res, 1000))
  }
}
