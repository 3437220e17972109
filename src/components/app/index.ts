import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {PORTS} from '../ports.js'
import {type Check, type CheckContext, type Component, type DesiredFile, file} from '../../engine/contract.js'
import {APP_DB_CREDENTIALS, APP_DB_PATHS, appDbTarget} from './database.js'

const SERVICE = 'foobar-app'

/**
 * The tiny default app on web servers: a page and /healthz with the host name, on 127.0.0.1. With mysql.app it
 * also stores notes in its database (POST /api/notes, GET /api/notes/count) and answers /readyz from it.
 */
export const app: Component = {
  name: 'app',
  after: ['base'],
  appliesTo: (host) => host.roles.includes('web'),
  secrets: ({inventory}) => (inventory.mysql?.app ? [{field: 'mysql.app.password', ref: inventory.mysql.app.password}] : []),
  desired: ({inventory, material}) => {
    const target = appDbTarget(inventory)
    const db = target && {
      ...target,
      credentials: APP_DB_CREDENTIALS,
      passwordFile: APP_DB_PATHS.password,
      caFile: APP_DB_PATHS.ca,
    }
    const view = {domain: inventory.site.domain, appPort: PORTS.app, db}
    const files: DesiredFile[] = []
    if (db) {
      // Read only for a real run (TLS material present): `foobar render` writes no secret files.
      const password = material ? readSecret(inventory.mysql!.app!.password, 'mysql.app.password') : 'secret-not-read-for-render'
      files.push(file(APP_DB_PATHS.password, `${password}\n`, {mode: 0o600, secret: true, notify: [SERVICE]}))
      if (material) files.push(file(APP_DB_PATHS.ca, material.internalCa, {notify: [SERVICE]}))
    }
    files.push(
      file('/opt/foobar-app/app.py', renderTemplate('app/app.py', view), {notify: [SERVICE]}),
      file('/etc/systemd/system/foobar-app.service', renderTemplate('app/foobar-app.service', view), {notify: [SERVICE]}),
    )
    return {
      packages: ['python3-minimal', ...(db ? ['python3-pymysql'] : [])],
      files,
      // Switched off: the password and the CA copy go with it.
      absent: db ? [] : [APP_DB_PATHS.password, APP_DB_PATHS.ca],
      services: [{name: SERVICE, onChange: 'restart', health: `curl -fsS -o /dev/null http://127.0.0.1:${PORTS.app}/healthz`}],
    }
  },
  checks,
}

function checks(ctx: CheckContext): Check[] {
  const target = appDbTarget(ctx.inventory)
  if (!target) return []
  return [
    {
      name: 'app reaches its database',
      run: async () => {
        const r = await ctx.runner.run(`curl -sS -m 5 http://127.0.0.1:${PORTS.app}/readyz`, {check: false})
        const answer = (r.stdout || r.stderr).trim().split('\n')[0] ?? ''
        return r.code === 0 && answer === 'ready'
          ? {
              ok: true,
              detail: `ready (${target.via === 'endpoint' ? `through the endpoint 127.0.0.1:${target.port}` : `primary ${target.host}:${target.port}`})`,
            }
          : {ok: false, detail: `not ready: ${answer || `curl exit ${r.code}`}`}
      },
    },
  ]
}
