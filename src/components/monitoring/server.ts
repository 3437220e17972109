import type {Host, Inventory} from '../../inventory/index.js'
import {shq} from '../../render/safe.js'
import {renderTemplate} from '../../render/templates.js'
import {PORTS} from '../ports.js'
import {type Component, file} from '../types.js'
import {MONITORING_PATHS as P} from './paths.js'
import {type Job, hostPort, scrapeTargets} from './targets.js'

export const SCRAPE_INTERVAL = '15s'
const RETENTION = '15d'
const JOBS: Job[] = ['node', 'nginx', 'haproxy', 'mysqld']

/** The Prometheus API on the monitoring host, as foobar reads it over SSH. */
export const prometheusUrl = (h: Host) => `http://${hostPort(h, PORTS.prometheus)}`

export function prometheusConfig(inv: Inventory, mon: Host): string {
  const targets = scrapeTargets(inv)
  return renderTemplate('monitoring/prometheus.yml', {
    domain: inv.site.domain,
    interval: SCRAPE_INTERVAL,
    host: mon.name,
    self: hostPort(mon, PORTS.prometheus),
    jobs: JOBS.map((name) => ({name, targets: targets.filter((t) => t.job === name)})).filter((j) => j.targets.length > 0),
  })
}

/** The monitoring host's Prometheus (Debian's package), scraping every client of the inventory. The log collector is in logs.ts. */
export const monitoringServer: Component = {
  name: 'monitoring-server',
  appliesTo: (host) => host.roles.includes('monitoring'),
  desired: ({inventory, host}) => {
    return {
      packages: ['prometheus'],
      files: [
        file(P.prometheusConfig, prometheusConfig(inventory, host), {notify: ['prometheus'], validate: {mode: 'candidate', command: 'promtool check config {}'}}),
        file(P.prometheusDefaults, renderTemplate('monitoring/prometheus.default', {listen: hostPort(host, PORTS.prometheus), retention: RETENTION}), {notify: ['prometheus']}),
      ],
      absent: [],
      services: [
        // Restart, not reload: the listen address (/etc/default/prometheus) is only read at start.
        {name: 'prometheus', onChange: 'restart', health: `curl -fsS -o /dev/null ${shq(`${prometheusUrl(host)}/-/ready`)}`},
      ],
    }
  },
}
