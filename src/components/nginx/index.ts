import {shq} from '../../render/safe.js'
import {renderTemplate} from '../../render/templates.js'
import {PORTS} from '../ports.js'
import {TLS_PATHS, tlsView} from '../tls/profile.js'
import {type Component, file} from '../types.js'

export const NGINX_SITE = '/etc/nginx/conf.d/foobar.conf'

/** nginx on web servers: HTTPS for the site in front of the app, HTTP only for the redirect and ACME. */
export const nginx: Component = {
  name: 'nginx',
  appliesTo: (host) => host.roles.includes('web'),
  desired: ({inventory, host}) => ({
    packages: ['nginx'],
    files: [
      file(
        NGINX_SITE,
        renderTemplate('nginx/site.conf', {
          host: host.name,
          domain: inventory.site.domain,
          names: [inventory.site.domain, ...inventory.site.aliases],
          ipv6: host.firewall.ipv6,
          httpsPort: host.lb.backendPort,
          appPort: PORTS.app,
          statusPort: PORTS.nginxStatus,
          certFile: TLS_PATHS.cert,
          keyFile: TLS_PATHS.key,
          tls: tlsView(host.tls),
        }),
        {notify: ['nginx'], validate: {mode: 'config', command: 'nginx -t -q'}},
      ),
    ],
    // Debian's default site also listens on :80 and would shadow ours for unknown names.
    absent: ['/etc/nginx/sites-enabled/default'],
    services: [
      {
        name: 'nginx',
        onChange: 'reload',
        health: `curl -fsSk -o /dev/null --resolve ${shq(`${inventory.site.domain}:${host.lb.backendPort}:127.0.0.1`)} ${shq(`https://${inventory.site.domain}:${host.lb.backendPort}${host.lb.healthCheck}`)}`,
      },
    ],
  }),
}
