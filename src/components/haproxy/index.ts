import type {Component} from '../../engine/contract.js'
import {file} from '../../engine/contract.js'
import type {Host} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {BACKEND_HEALTH_PATH} from '../nginx/index.js'
import {PORTS} from '../ports.js'
import {TLS_PATHS, tlsView} from '../tls/profile.js'
import {webTierChecks} from './checks.js'
import {counters, drain, enable, haproxyState} from './runtime.js'

export const HAPROXY_CFG = '/etc/haproxy/haproxy.cfg'

/**
 * With a floating address (lb.vip), HAProxy answers this path itself on the HTTPS frontend, to this host only:
 * keepalived's track script asks it whether HAProxy serves, whatever the backends do.
 */
export const LB_SERVING_PATH = '/.foobar-lb-serving'

const addr = (h: Host) => (h.family === 6 ? `[${h.address}]` : h.address)
const isWeb = (h: Host) => h.roles.includes('web')

/**
 * HAProxy on the LB: TLS termination (the site certificate), re-encryption to verified backends, health checks,
 * its own metrics endpoint, and the runtime API that drains and enables web servers during rolling changes.
 */
export const haproxy: Component = {
  name: 'haproxy',
  after: ['base'],
  appliesTo: (host) => host.roles.includes('lb'),
  ports: () => [
    {port: PORTS.http, proto: 'tcp', from: [], comment: 'http (redirect and ACME)'},
    {port: PORTS.https, proto: 'tcp', from: [], comment: 'https'},
  ],
  targets: ({host}) => (host.monitoring.enabled ? [{job: 'haproxy', what: 'haproxy metrics', port: PORTS.haproxyMetrics}] : []),
  desired: ({inventory, host, material}) => {
    const webs = inventory.hosts.filter(isWeb)
    return {
      // socat talks to the runtime API (drain and enable during rolling changes).
      packages: ['haproxy', 'socat'],
      files: [
        // Before the config: haproxy -c checks the candidate with the certificate it names.
        ...(material
          ? [
              file(TLS_PATHS.haproxyBundle, material.siteChain + material.siteKey, {mode: 0o600, secret: true, notify: ['haproxy']}),
              file(TLS_PATHS.backendCa, material.backendCa, {notify: ['haproxy']}),
            ]
          : []),
        file(
          HAPROXY_CFG,
          renderTemplate('haproxy/haproxy.cfg', {
            host: host.name,
            domain: inventory.site.domain,
            balance: host.lb.balance,
            backendHealth: BACKEND_HEALTH_PATH,
            reencrypt: host.lb.reencrypt,
            backendCa: TLS_PATHS.backendCa,
            bundleFile: TLS_PATHS.haproxyBundle,
            statsPort: PORTS.haproxyStats,
            servingPath: host.lb.vip === undefined ? '' : LB_SERVING_PATH,
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
  checks: (ctx) => webTierChecks(ctx),
  balancer: {
    // An LB that is also a web server is not drained from itself.
    isBackend: (h) => isWeb(h) && !h.roles.includes('lb'),
    state: haproxyState,
    drain: (lb, backend) => drain(lb, backend),
    enable: (lb, backend, timeoutMs) => enable(lb, backend, timeoutMs),
    counters,
  },
}
