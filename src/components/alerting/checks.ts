import type {Check, CheckContext} from '../../engine/contract.js'
import {hostPort} from '../../util/address.js'
import {shq} from '../../util/shell.js'
import {PORTS} from '../ports.js'
import {parseAlertmanagers, parseRules, parseVector} from './api.js'
import {alertmanagerUrl} from './paths.js'
import {probes} from './probes.js'
import {alertRules, ruleNames} from './rules.js'

/** verify on the monitoring host: the rules are loaded, Prometheus sends to Alertmanager, the probes succeed. */
export function alertingChecks(ctx: CheckContext): Check[] {
  const prom = `http://${hostPort(ctx.host, PORTS.prometheus)}`
  const get = async (url: string) => (await ctx.runner.run(`curl -fsS -m 10 ${shq(url)}`)).stdout
  return [
    {
      name: 'alert rules loaded',
      run: async () => {
        const want = ruleNames(alertRules(ctx.inventory))
        const loaded = parseRules(await get(`${prom}/api/v1/rules?type=alert`))
        const missing = want.filter((n) => !loaded.some((r) => r.name === n))
        if (missing.length) return {ok: false, detail: `not loaded by Prometheus: ${missing.join(', ')}`}
        const bad = loaded.filter((r) => r.health === 'err')
        if (bad.length) return {ok: false, detail: bad.map((r) => `${r.name}: ${r.lastError ?? 'error'}`).join('; ')}
        return {ok: true, detail: `${want.length} rules loaded`}
      },
    },
    {
      name: 'alertmanager reachable from prometheus',
      run: async () => {
        const am = alertmanagerUrl(ctx.host)
        const active = parseAlertmanagers(await get(`${prom}/api/v1/alertmanagers`))
        if (!active.some((u) => u.startsWith(`${am}/`)))
          return {ok: false, detail: `Prometheus sends to ${active.join(', ') || 'no Alertmanager'}, not ${am}`}
        // From the monitoring host itself, where Prometheus runs: the same path its notifications take.
        const ready = await ctx.runner.run(`curl -fsS -m 5 -o /dev/null ${shq(`${am}/-/ready`)}`, {check: false})
        if (ready.code !== 0) return {ok: false, detail: `${am} does not answer: ${ready.stderr.trim().split('\n').pop()}`}
        // Failed sends are said, not failed on: a restart of Alertmanager while alerts fire leaves a few behind.
        const errors = parseVector(
          await get(`${prom}/api/v1/query?query=${encodeURIComponent('sum(increase(prometheus_notifications_errors_total[5m]))')}`),
        )
        const n = Math.round(errors[0]?.value ?? 0)
        return {ok: true, detail: `Prometheus sends to ${am}, which is ready${n > 0 ? ` (${n} failed sends in the last 5 minutes)` : ''}`}
      },
    },
    {
      name: 'blackbox probes succeed',
      run: async () => {
        const want = probes(ctx.inventory)
        const got = parseVector(await get(`${prom}/api/v1/query?query=${encodeURIComponent('probe_success')}`))
        const failing = want.filter((p) => got.find((g) => g.labels.instance === p.url)?.value !== 1)
        if (failing.length)
          return {
            ok: false,
            detail: failing
              .map((p) => `${p.probe} ${p.url}: ${got.some((g) => g.labels.instance === p.url) ? 'failed' : 'no result yet'}`)
              .join('; '),
          }
        return {ok: true, detail: `${want.length} probes succeed`}
      },
    },
  ]
}
