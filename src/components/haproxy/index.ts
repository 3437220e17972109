import type {Host} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {PORTS} from '../ports.js'
import {TLS_PATHS, tlsView} from '../tls/profile.js'
import {type Component, file} from '../types.js'

export const HAPROXY_CFG = '/etc/haproxy/haproxy.cfg'

const addr = (h: Host) => (h.family === 6 ? `[${h.address}]` : h.address)

/** HAProxy on the LB: TLS termination, re-encryption to verified backends, health checks, runtime API. */
export const haproxy: Component = {
  name: 'haproxy',
  appliesTo: (host) => host.roles.includes('lb'),
  desired: ({inventory, host}) => {
    const webs = inventory.hosts.filter((h) => h.roles.includes('web'))
    return {
      // socat talks to the runtime API (drain and enable during rolling changes).
      packages: ['haproxy', 'socat'],
      files: [
        file(
          HAPROXY_CFG,
          renderTemplate('haproxy/haproxy.cfg', {
            host: host.name,
            domain: inventory.site.domain,
            balance: host.lb.balance,
            healthCheck: host.lb.healthCheck,
            reencrypt: host.lb.reencrypt,
            backendCa: TLS_PATHS.backendCa,
            bundleFile: TLS_PATHS.haproxyBundle,
            statsPort: PORTS.haproxyStats,
            metricsBind: host.monitoring.enabled ? `${addr(host)}:${PORTS.haproxyMetrics}` : '',
            tls: tlsView(host.tls),
            backends: webs.map((w) => ({name: w.name, address: addr(w), port: host.lb.reencrypt ? w.lb.backendPort : PORTS.http})),
            acmeBackends: webs.map((w) => ({name: w.name, address: addr(w)})),
          }),
          {notify: ['haproxy'], validate: {mode: 'candidate', command: 'haproxy -c -q -f {}'}},
        ),
      ],
      absent: [],
      services: [{name: 'haproxy', onChange: 'reload', health: `curl -fsS -o /dev/null http://127.0.0.1:${PORTS.haproxyStats}/stats`}],
    }
  },
}
