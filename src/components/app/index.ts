import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {PORTS} from '../ports.js'
import {type Check, type CheckContext, type Component, type DesiredFile, type LiveAction, file} from '../../engine/contract.js'
import {shq} from '../../util/shell.js'
import {APP_DB_CREDENTIALS, APP_DB_PATHS, appDbTarget} from './database.js'

const SERVICE = 'foobar-app'
const UNIT = `${SERVICE}.service`
/** The default app's files: absent on a web server when the inventory names its own app. */
export const DEFAULT_APP_PATHS = {
  dir: '/opt/foobar-app',
  script: '/opt/foobar-app/app.py',
  unit: `/etc/systemd/system/${UNIT}`,
  /** `systemctl enable`'s link: removed with the unit by the live step that stops the service. */
  wants: `/etc/systemd/system/multi-user.target.wants/${UNIT}`,
} as const

/**
 * The tiny default app on web servers: a page and /healthz with the host name, on 127.0.0.1. With mysql.app it
 * also stores notes in its database (POST /api/notes, GET /api/notes/count) and answers /readyz from it.
 */
export const app: Component = {
  name: 'app',
  after: ['base'],
  // On every web server: with the inventory's own app it takes the default app away (files, then the service).
  appliesTo: (host) => host.roles.includes('web'),
  secrets: ({inventory}) => (inventory.mysql?.app ? [{field: 'mysql.app.password', ref: inventory.mysql.app.password}] : []),
  desired: ({inventory, material}) => {
    if (inventory.app)
      return {
        packages: [],
        files: [],
        absent: [DEFAULT_APP_PATHS.script, DEFAULT_APP_PATHS.unit, APP_DB_PATHS.password, APP_DB_PATHS.ca],
        services: [],
      }
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
      file(DEFAULT_APP_PATHS.script, renderTemplate('app/app.py', view), {notify: [SERVICE]}),
      file(DEFAULT_APP_PATHS.unit, renderTemplate('app/foobar-app.service', view), {notify: [SERVICE]}),
    )
    return {
      packages: ['python3-minimal', ...(db ? ['python3-pymysql'] : [])],
      files,
      // Switched off: the password and the CA copy go with it.
      absent: db ? [] : [APP_DB_PATHS.password, APP_DB_PATHS.ca],
      services: [{name: SERVICE, onChange: 'restart', health: `curl -fsS -o /dev/null http://127.0.0.1:${PORTS.app}/healthz`}],
    }
  },
  live: {
    // Only with the inventory's own app: the default app's service is stopped once nginx no longer sends it anything.
    prepare: (inventory) =>
      inventory.app ? {script: () => defaultAppFactsScript(), plan: (_ctx, lines) => planDefaultAppGone(lines)} : undefined,
  },
  checks,
}

/** Whether the default app's service still runs, is enabled, or has its wants link (one line). */
export const defaultAppFactsScript = () =>
  [
    `e=$(systemctl is-enabled ${UNIT} 2>/dev/null | head -n1)`,
    `a=$(systemctl is-active ${UNIT} 2>/dev/null | head -n1)`,
    `l=$([ -L ${DEFAULT_APP_PATHS.wants} ] && echo link || echo nolink)`,
    'echo "${e:-none} ${a:-inactive} $l"',
  ].join('; ')

/**
 * Pure: the step that stops the default app when the inventory names its own. Its files are already gone (removed
 * with the host's other files, before nginx is reloaded onto the new app); the service, still running from memory
 * until now, is stopped after that reload, its enable link and directory removed.
 */
export function planDefaultAppGone(lines: string[]): LiveAction[] {
  const [enabled = 'none', active = 'inactive', link = 'nolink'] = (lines[0] ?? '').split(' ')
  const running = !['inactive', 'failed', 'unknown', ''].includes(active)
  if (!running && link !== 'link' && !['enabled', 'enabled-runtime', 'linked'].includes(enabled)) return []
  return [
    {
      kind: 'stop-default-app',
      summary: `stop and disable the default app (${UNIT}): the inventory names its own app (was ${enabled}, ${active})`,
      data: {unit: UNIT, was: `${enabled}, ${active}`},
      apply: async (h) => {
        h.step(`stopping the default app (${UNIT})`)
        await h.runner.run(
          `systemctl disable --now ${UNIT} >/dev/null 2>&1; systemctl stop ${UNIT} >/dev/null 2>&1; rm -f ${DEFAULT_APP_PATHS.wants}; ` +
            `rmdir ${DEFAULT_APP_PATHS.dir} 2>/dev/null; systemctl daemon-reload; systemctl reset-failed ${UNIT} 2>/dev/null; true`,
        )
      },
    },
  ]
}

function checks(ctx: CheckContext): Check[] {
  if (ctx.inventory.app) return [appHealthCheck(ctx)]
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

/** The inventory's own app answers its health path through nginx on this web server (what the load balancer asks). */
function appHealthCheck(ctx: CheckContext): Check {
  const {inventory: inv, host} = ctx
  const port = host.lb.backendPort
  const url = `https://${inv.site.domain}:${port}${host.lb.healthCheck}`
  const what = inv.app?.root ? `root ${inv.app.root}` : `upstream ${inv.app?.upstream}`
  return {
    name: 'app answers its health path',
    run: async () => {
      const r = await ctx.runner.run(
        `curl -sk -m 5 -o /dev/null -w '%{http_code}' --resolve ${shq(`${inv.site.domain}:${port}:127.0.0.1`)} ${shq(url)}`,
        {check: false},
      )
      const status = r.stdout.trim()
      return status === '200'
        ? {ok: true, detail: `${host.lb.healthCheck} through nginx: 200 (${what})`}
        : {
            ok: false,
            detail: `${host.lb.healthCheck} through nginx: ${status && status !== '000' ? `HTTP ${status}` : `no answer (curl exit ${r.code})`} (${what})`,
          }
    },
  }
}
