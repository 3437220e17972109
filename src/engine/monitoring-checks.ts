import {randomBytes} from 'node:crypto'
import {MONITORING_PATHS, hostTargets, monitoringHost} from '../components/monitoring/index.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions} from '../remote/connection.js'
import {shq} from '../render/safe.js'
import {buildVersion} from '../components/monitoring/stats.js'

type Result = {ok: boolean; detail: string}
export interface MonitoringCheck {
  name: string
  run: () => Promise<Result>
}

/** Runs on one connection at most `limit` at a time: sshd allows 10 sessions per connection (MaxSessions). */
type Runner = Pick<Connection, 'run'>
function limited(conn: Connection, limit: number): Runner {
  let active = 0
  const waiting: Array<() => void> = []
  return {
    run: async (...args: Parameters<Connection['run']>) => {
      while (active >= limit) await new Promise<void>((r) => waiting.push(r))
      active++
      try {
        return await conn.run(...args)
      } finally {
        active--
        waiting.shift()?.()
      }
    },
  }
}

export interface MonitoringServer {
  host: Host
  conn: Runner & {close: () => void}
}

/** The monitoring server's connection for verify, shared by every host's checks; undefined without one (or unreachable: the checks then say so). */
export async function monitoringServerConnection(inv: Inventory, o: ConnectOptions): Promise<MonitoringServer | undefined> {
  const host = monitoringHost(inv)
  if (!host) return undefined
  try {
    const conn = await Connection.open(host, o)
    return {host, conn: {...limited(conn, 4), close: () => conn.close()}}
  } catch {
    return {host, conn: {run: async () => ({code: 255, stdout: '', stderr: `cannot reach the monitoring server ${host.name}`}) as Awaited<ReturnType<Connection['run']>>, close: () => {}}}
  }
}

/**
 * Every client of the host answers with metrics, fetched from the monitoring server when there is one (what
 * Prometheus sees through the firewall), else by the host itself on its private address; and, with a collector,
 * a line logged on the host arrives there.
 */
export function monitoringChecks(host: Host, conn: Runner, mon?: MonitoringServer): MonitoringCheck[] {
  const from: {host: Host; conn: Runner} = mon && mon.host !== host ? mon : {host, conn}
  const checks: MonitoringCheck[] = hostTargets(host).map((t) => ({
    name: `metrics: ${t.job}`,
    run: async () => {
      const r = await from.conn.run(`curl -fsS -m 5 ${shq(t.url)}`, {check: false})
      if (r.code !== 0) return {ok: false, detail: `${t.url} from ${from.host.name}: ${(r.stderr || `curl exit ${r.code}`).trim().split('\n').pop()}`}
      return {ok: true, detail: `${t.target} from ${from.host.name}${buildVersion(r.stdout) ? `, version ${buildVersion(r.stdout)}` : ''}`}
    },
  }))
  if (mon && mon.host !== host && host.monitoring.enabled) {
    const marker = `foobar-verify-${randomBytes(6).toString('hex')}`
    let logged = false
    checks.push({
      name: 'logs reach the collector',
      run: async () => {
        // Logged once; the retries only look for it (forwarding is asynchronous).
        if (!logged) {
          await conn.run(`logger -t foobar-verify ${shq(marker)}`)
          logged = true
        }
        const dir = `${MONITORING_PATHS.remoteLogs}/${host.name}`
        const r = await mon.conn.run(`grep -rqF ${shq(marker)} ${shq(dir)}`, {check: false})
        return r.code === 0 ? {ok: true, detail: `a line logged here arrived in ${mon.host.name}:${dir}`} : {ok: false, detail: `a line logged here has not arrived in ${mon.host.name}:${dir}`}
      },
    })
  }
  return checks
}
