import type {Host, Inventory} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'
import {renderTemplate} from '../../render/templates.js'
import {PORTS} from '../ports.js'
import {type Component, file} from '../../engine/contract.js'
import {MONITORING_PATHS as P} from './paths.js'
import type {ScrapeTarget} from '../../engine/contract.js'
import {hostPort} from '../../util/address.js'
import {prometheusAlerting} from '../alerting/prometheus.js'

export const SCRAPE_INTERVAL = '15s'
const RETENTION = '15d'

/** The Prometheus API on the monitoring host, as foobar reads it over SSH. */
export const prometheusUrl = (h: Host) => `http://${hostPort(h, PORTS.prometheus)}`

/** Jobs in the order the components declare them, each with its targets in inventory order. */
export function prometheusConfig(inv: Inventory, mon: Host, targets: ScrapeTarget[]): string {
  const jobs = [...new Set(targets.map((t) => t.job))]
  return renderTemplate('monitoring/prometheus.yml', {
    domain: inv.site.domain,
    interval: SCRAPE_INTERVAL,
    host: mon.name,
    self: hostPort(mon, PORTS.prometheus),
    jobs: jobs.map((name) => ({name, targets: targets.filter((t) => t.job === name)})),
    // Rules, Alertmanager and the blackbox probes (src/components/alerting), when alerting is on.
    alerting: prometheusAlerting(inv, mon) ?? false,
  })
}

/** The monitoring host's Prometheus (Debian's package), scraping every client of the inventory. The log collector is in logs.ts. */
export const monitoringServer: Component = {
  name: 'monitoring-server',
  after: ['exporters'],
  appliesTo: (host) => host.roles.includes('monitoring'),
  ports: ({host}) => [{port: PORTS.prometheus, proto: 'tcp', from: host.firewall.adminCidrs, comment: 'prometheus from admin networks'}],
  desired: ({inventory, host, targets}) => {
    return {
      packages: ['prometheus'],
      files: [
        file(P.prometheusConfig, prometheusConfig(inventory, host, targets), {
          notify: ['prometheus'],
          validate: {mode: 'candidate', command: 'promtool check config {}'},
        }),
        file(
          P.prometheusDefaults,
          renderTemplate('monitoring/prometheus.default', {listen: hostPort(host, PORTS.prometheus), retention: RETENTION}),
          {notify: ['prometheus']},
        ),
      ],
      absent: [],
      services: [
        // Restart, not reload: the listen address (/etc/default/prometheus) is only read at start.
        {name: 'prometheus', onChange: 'restart', health: `curl -fsS -o /dev/null ${shq(`${prometheusUrl(host)}/-/ready`)}`},
      ],
    }
  },
}
