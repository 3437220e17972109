import type {Host, Inventory} from '../../inventory/index.js'
import {hostPort} from '../../util/address.js'
import {PORTS} from '../ports.js'
import {ALERTING_PATHS as P, BLACKBOX_ADDRESS, alertingOn} from './paths.js'
import {probes} from './probes.js'

/** What alerting adds to the monitoring host's prometheus.yml (rendered by the monitoring server), or undefined when off. */
export interface PrometheusAlerting {
  evaluationInterval: string
  rules: string
  alertmanager: string
  blackbox: string
  probeJobs: Array<{name: string; module: string; targets: Array<{url: string; host: string; probe: string}>}>
}

export function prometheusAlerting(inv: Inventory, mon: Host): PrometheusAlerting | undefined {
  if (!alertingOn(inv)) return undefined
  const all = probes(inv)
  const jobs = [...new Set(all.map((p) => p.job))]
  return {
    evaluationInterval: inv.alerting.evaluationInterval,
    rules: P.rules,
    alertmanager: hostPort(mon, PORTS.alertmanager),
    blackbox: BLACKBOX_ADDRESS,
    probeJobs: jobs.map((name) => {
      const mine = all.filter((p) => p.job === name)
      return {name, module: mine[0]!.module, targets: mine.map(({url, host, probe}) => ({url, host, probe}))}
    }),
  }
}
