import {renderTemplate} from '../../render/templates.js'
import {PORTS} from '../ports.js'
import {type Component, file} from '../../engine/contract.js'

/** The tiny default app on web servers: a page and /healthz with the host name, on 127.0.0.1. */
export const app: Component = {
  name: 'app',
  after: ['base'],
  appliesTo: (host) => host.roles.includes('web'),
  desired: ({inventory}) => {
    const view = {domain: inventory.site.domain, appPort: PORTS.app}
    return {
      packages: ['python3-minimal'],
      files: [
        file('/opt/foobar-app/app.py', renderTemplate('app/app.py', view), {notify: ['foobar-app']}),
        file('/etc/systemd/system/foobar-app.service', renderTemplate('app/foobar-app.service', view), {notify: ['foobar-app']}),
      ],
      absent: [],
      services: [{name: 'foobar-app', onChange: 'restart', health: `curl -fsS -o /dev/null http://127.0.0.1:${PORTS.app}/healthz`}],
    }
  },
}
