import {randomBytes} from 'node:crypto'
import type {Check, CheckContext} from '../../engine/contract.js'
import type {Host} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {shq} from '../../util/shell.js'
import {MONITORING_PATHS} from './paths.js'
import {buildVersion} from './stats.js'
import {monitoringHost} from './targets.js'

/** Where a host's endpoints are fetched from: the monitoring server when there is one (what Prometheus sees through the firewall), else the host itself. */
async function scraper(ctx: CheckContext): Promise<{host: Host; runner: Runner}> {
  const mon = monitoringHost(ctx.inventory)
  if (!mon || mon === ctx.host) return {host: ctx.host, runner: ctx.runner}
  try {
    return {host: mon, runner: await ctx.connect(mon)}
  } catch (error) {
    throw new Error(`cannot reach the monitoring server ${mon.name}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** Every metrics endpoint of the host answers with metrics. */
export function metricsChecks(ctx: CheckContext): Check[] {
  return ctx.targets.map((t) => ({
    name: `metrics: ${t.job}`,
    run: async () => {
      const from = await scraper(ctx)
      const r = await from.runner.run(`curl -fsS -m 5 ${shq(t.url)}`, {check: false})
      if (r.code !== 0)
        return {ok: false, detail: `${t.url} from ${from.host.name}: ${(r.stderr || `curl exit ${r.code}`).trim().split('\n').pop()}`}
      const version = buildVersion(r.stdout)
      return {ok: true, detail: `${t.target} from ${from.host.name}${version ? `, version ${version}` : ''}`}
    },
  }))
}

/** With a collector: a line logged on the host arrives there. */
export function logsChecks(ctx: CheckContext): Check[] {
  const mon = monitoringHost(ctx.inventory)
  const {host} = ctx
  if (!mon || mon === host || !host.monitoring.enabled) return []
  const marker = `foobar-verify-${randomBytes(6).toString('hex')}`
  let logged = false
  return [
    {
      name: 'logs reach the collector',
      run: async () => {
        // Logged once; the retries only look for it (forwarding is asynchronous).
        if (!logged) {
          await ctx.runner.run(`logger -t foobar-verify ${shq(marker)}`)
          logged = true
        }
        const dir = `${MONITORING_PATHS.remoteLogs}/${host.name}`
        const r = await (await ctx.connect(mon)).run(`grep -rqF ${shq(marker)} ${shq(dir)}`, {check: false})
        return r.code === 0
          ? {ok: true, detail: `a line logged here arrived in ${mon.name}:${dir}`}
          : {ok: false, detail: `a line logged here has not arrived in ${mon.name}:${dir}`}
      },
    },
  ]
}
