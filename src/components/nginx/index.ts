import type {Component} from '../../engine/contract.js'
import type {Inventory} from '../../inventory/index.js'
import {file} from '../../engine/contract.js'
import {shq} from '../../util/shell.js'
import {renderTemplate} from '../../render/templates.js'
import {nginxExporter} from '../monitoring/exporters.js'
import {PORTS} from '../ports.js'
import {hostGroup} from '../firewall/rules.js'
import {TLS_PATHS, tlsView} from '../tls/profile.js'

export const NGINX_SITE = '/etc/nginx/conf.d/foobar.conf'

/**
 * What the load balancer's health check asks each web server: nginx answers it with the app's own health path on
 * that server (the host's lb.health_check, whose default is app.health). So HAProxy's config never names the app's
 * path, and a change of app or health path rolls with the web servers (each gated on its own new path) instead of
 * leaving the load balancer checking the old path against the new app.
 */
export const BACKEND_HEALTH_PATH = '/.foobar-health'

/**
 * nginx's health gate: the app's own health path through nginx on this server. A failure names the path (the last
 * line is what the engine reports). No `exit`: the upgrade gate runs it inside a group of its own.
 */
export function healthCommand(domain: string, port: number, path: string): string {
  const curl = `curl -fsSk -o /dev/null --resolve ${shq(`${domain}:${port}:127.0.0.1`)} ${shq(`https://${domain}:${port}${path}`)}`
  return `foobar_health=$(${curl} 2>&1) || { printf '%s: %s\\n' ${shq(`GET ${path} (the app's health path) through nginx`)} "$foobar_health" >&2; false; }`
}

/** Where nginx sends the site's requests: the inventory's app (upstream or root), else the default app. */
export function appView(inventory: Inventory): {upstream: string; upstreamWhat: string; root: string} {
  const app = inventory.app
  if (app?.root) return {upstream: '', upstreamWhat: '', root: app.root}
  if (app?.upstream) return {upstream: app.upstream, upstreamWhat: `The app: ${app.upstream} (app.upstream in the inventory).`, root: ''}
  return {upstream: `127.0.0.1:${PORTS.app}`, upstreamWhat: 'The default app (foobar-app), on this server only.', root: ''}
}

const loadBalancers = hostGroup((h) => h.roles.includes('lb'))

/**
 * nginx on web servers: HTTPS for the site in front of the app (with the site certificate), HTTP only for the
 * redirect and ACME; its exporter where monitoring is on.
 */
export const nginx: Component = {
  name: 'nginx',
  after: ['app'],
  appliesTo: (host) => host.roles.includes('web'),
  ports: ({inventory, host}) => {
    const lbs = loadBalancers.all(inventory)
    // With no load balancer the web servers face clients directly.
    return [
      {port: PORTS.http, proto: 'tcp', from: lbs, comment: lbs.length ? 'http from the load balancer (ACME)' : 'http'},
      {port: host.lb.backendPort, proto: 'tcp', from: lbs, comment: lbs.length ? 'https from the load balancer' : 'https'},
    ]
  },
  targets: ({host}) => (host.monitoring.enabled ? [{job: 'nginx', what: 'nginx exporter', port: PORTS.nginxExporter}] : []),
  desired: ({inventory, host, material}) => {
    const exporter = host.monitoring.enabled ? nginxExporter(host) : undefined
    return {
      packages: ['nginx', ...(exporter?.packages ?? [])],
      files: [
        ...(material
          ? [
              file(TLS_PATHS.cert, material.siteChain, {notify: ['nginx']}),
              file(TLS_PATHS.key, material.siteKey, {mode: 0o600, secret: true, notify: ['nginx']}),
            ]
          : []),
        file(
          NGINX_SITE,
          renderTemplate('nginx/site.conf', {
            host: host.name,
            domain: inventory.site.domain,
            names: [inventory.site.domain, ...inventory.site.aliases],
            ipv6: host.firewall.ipv6,
            httpsPort: host.lb.backendPort,
            ...appView(inventory),
            health: host.lb.healthCheck,
            backendHealth: BACKEND_HEALTH_PATH,
            statusPort: PORTS.nginxStatus,
            certFile: TLS_PATHS.cert,
            keyFile: TLS_PATHS.key,
            tls: tlsView(host.tls),
            responses: host.nginx.responses,
          }),
          {notify: ['nginx'], validate: {mode: 'config', command: 'nginx -t -q'}},
        ),
        ...(exporter?.files ?? []),
      ],
      // Debian's default site also listens on :80 and would shadow ours for unknown names.
      absent: ['/etc/nginx/sites-enabled/default'],
      services: [
        {
          name: 'nginx',
          onChange: 'reload',
          health: healthCommand(inventory.site.domain, host.lb.backendPort, host.lb.healthCheck),
        },
        ...(exporter?.services ?? []),
      ],
    }
  },
}
