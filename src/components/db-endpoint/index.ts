import type {Check, CheckContext, Component, ComponentState, LiveAction} from '../../engine/contract.js'
import {emptyState, file, leafKey} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {hostPort} from '../../util/address.js'
import {hostGroup} from '../firewall/rules.js'
import {shq} from '../../util/shell.js'
import {isUp, parseServersState} from '../haproxy/runtime.js'
import {mysqlService} from '../mysql/fence.js'
import {galeraMembers, isGalera} from '../galera/cluster.js'
import {tlsView} from '../tls/profile.js'

/*
 * The database endpoint (issue 17, the endpoint that follows the writer): on every web server the app connects to
 * a local address that always leads to the database host that takes writes. Its own HAProxy instance (apart from a
 * load balancer's) asks each database host's writer check — over mutual TLS with certificates from foobar's
 * internal CA — whether it is up and not read-only. After `foobar db promote` the endpoint follows the new writer
 * within seconds, with no change to the app and no provision. Switched on by `mysql.endpoint` in the inventory.
 */

const DIR = '/etc/foobar/db-endpoint'
export const DB_ENDPOINT_PATHS = {
  config: `${DIR}/haproxy.cfg`,
  ca: `${DIR}/ca.pem`,
  clientBundle: `${DIR}/client.pem`,
  checkCert: `${DIR}/writer-check.crt`,
  checkKey: `${DIR}/writer-check.key`,
  checkSql: `${DIR}/writer-check.sql`,
  checkScript: '/usr/local/lib/foobar/db-writer-check',
  endpointUnit: '/etc/systemd/system/foobar-db-endpoint.service',
  checkUnit: '/etc/systemd/system/foobar-db-writer-check.service',
  socket: '/run/foobar-db-endpoint.sock',
} as const
const P = DB_ENDPOINT_PATHS
const ENDPOINT = 'foobar-db-endpoint'
const CHECK = 'foobar-db-writer-check'

const settings = (inv: Inventory) => inv.mysql?.endpoint
const isWeb = (h: Host) => h.roles.includes('web')
const webServers = hostGroup(isWeb)
const dbHosts = (inv: Inventory) => inv.hosts.filter((h) => h.db !== undefined)
const addr = (h: Host) => (h.family === 6 ? `[${h.address}]` : h.address)
const listen = (inv: Inventory) => `127.0.0.1:${settings(inv)!.port}`

/** The writer check on a database host: a tiny HTTPS service (python3) that answers from @@read_only. */
function writerCheck(
  inv: Inventory,
  host: Host,
  ctx: {material?: {internalCa: string; leaves: Record<string, {cert: string; key: string}>}},
): ComponentState {
  const s = emptyState()
  const ep = settings(inv)!
  const leaf = ctx.material?.leaves[leafKey('db-check', host.name)]
  const view = {host: host.name, address: host.address, port: ep.checkPort, listen: hostPort(host, ep.checkPort), galera: isGalera(inv)}
  // libnss-systemd: the database resolves the check's dynamic user by name for its socket authentication.
  s.packages.push('python3', 'libnss-systemd')
  if (ctx.material && leaf) {
    // Handed to the dynamic user by systemd (LoadCredential): the key stays root's on disk.
    s.files.push(
      file(P.ca, ctx.material.internalCa, {notify: [CHECK]}),
      file(P.checkCert, leaf.cert, {notify: [CHECK]}),
      file(P.checkKey, leaf.key, {mode: 0o600, secret: true, notify: [CHECK]}),
    )
  }
  s.files.push(
    file(P.checkSql, renderTemplate('db-endpoint/writer-check.sql', view), {mode: 0o600, notify: [CHECK]}),
    file(P.checkScript, renderTemplate('db-endpoint/writer-check', view), {
      mode: 0o755,
      notify: [CHECK],
      validate: {mode: 'candidate', command: "python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' {}"},
    }),
    file(
      P.checkUnit,
      renderTemplate('db-endpoint/foobar-db-writer-check.service', {
        ...view,
        db: mysqlService(inv),
        sql: P.checkSql,
        script: P.checkScript,
        certFile: P.checkCert,
        keyFile: P.checkKey,
        caFile: P.ca,
      }),
      {notify: [CHECK]},
    ),
  )
  s.services.push({name: CHECK, onChange: 'restart', health: `ss -Hltn ${shq(`sport = :${ep.checkPort}`)} | grep -q .`})
  return s
}

/** The endpoint on a web server: its own HAProxy in TCP mode, the designated primary first, the others as backups. */
function endpoint(
  inv: Inventory,
  host: Host,
  ctx: {material?: {internalCa: string; leaves: Record<string, {cert: string; key: string}>}},
): ComponentState {
  const s = emptyState()
  const ep = settings(inv)!
  const mysql = inv.mysql!
  const leaf = ctx.material?.leaves[leafKey('db-client', host.name)]
  s.packages.push('haproxy', 'socat')
  if (ctx.material && leaf) {
    s.files.push(
      file(P.ca, ctx.material.internalCa, {notify: [ENDPOINT]}),
      file(P.clientBundle, leaf.cert + leaf.key, {mode: 0o600, secret: true, notify: [ENDPOINT]}),
    )
  }
  // Galera: every member takes writes, but the endpoints send them to one at a time (the first that is synced, in
  // the inventory's order), so that concurrent transactions do not conflict across members.
  const ordered = isGalera(inv)
    ? galeraMembers(inv)
    : [...dbHosts(inv)].sort((a, b) => (a.name === mysql.primary ? -1 : b.name === mysql.primary ? 1 : 0))
  s.files.push(
    file(
      P.config,
      renderTemplate('db-endpoint/haproxy.cfg', {
        host: host.name,
        listen: listen(inv),
        socket: P.socket,
        checkPort: ep.checkPort,
        caFile: P.ca,
        clientBundle: P.clientBundle,
        tls: tlsView(host.tls),
        servers: ordered.map((h) => ({name: h.name, address: addr(h), port: mysql.port, backup: h.name !== mysql.primary})),
        metricsBind: host.monitoring.enabled ? hostPort(host, ep.metricsPort) : '',
      }),
      // Checked with the certificates it names in place (written just before it).
      {notify: [ENDPOINT], validate: {mode: 'candidate', command: 'haproxy -c -q -f {}'}},
    ),
    file(
      P.endpointUnit,
      renderTemplate('db-endpoint/foobar-db-endpoint.service', {host: host.name, listen: listen(inv), config: P.config}),
      {notify: [ENDPOINT]},
    ),
  )
  s.services.push({name: ENDPOINT, onChange: 'reload', health: `ss -Hltn ${shq(`sport = :${ep.port}`)} | grep -q .`})
  return s
}

/** Both parts on one host (a web server that is also a database host) share the CA file: it notifies both. */
function merge(a: ComponentState, b: ComponentState): ComponentState {
  const files = a.files.map((f) => {
    const twin = b.files.find((x) => x.path === f.path)
    return twin ? {...f, notify: [...new Set([...(f.notify ?? []), ...(twin.notify ?? [])])]} : f
  })
  files.push(...b.files.filter((f) => !a.files.some((x) => x.path === f.path)))
  return {packages: [...a.packages, ...b.packages], files, absent: [...a.absent, ...b.absent], services: [...a.services, ...b.services]}
}

/** Debian's haproxy package starts its own instance: on a host that is not a load balancer it has nothing to do. */
function planDefaultHaproxy(host: Host, lines: string[]): LiveAction[] {
  if (host.roles.includes('lb') || !isWeb(host)) return []
  const [enabled = 'none', active = ''] = (lines[0] ?? '').split(' ')
  if (!['enabled', 'active'].includes(enabled) && active !== 'active') return []
  return [
    {
      kind: 'disable',
      summary: `stop and disable Debian's haproxy.service (not a load balancer; the endpoint runs its own) (was ${enabled}, ${active || 'unknown'})`,
      data: {unit: 'haproxy.service', was: `${enabled}, ${active}`},
      apply: async (h) => {
        h.step('disabling haproxy.service')
        await h.runner.run(
          'systemctl disable --now haproxy.service >/dev/null 2>&1; systemctl reset-failed haproxy.service 2>/dev/null; true',
        )
      },
    },
  ]
}

function checks(ctx: CheckContext): Check[] {
  if (!isWeb(ctx.host)) return []
  return [
    {
      name: 'db endpoint leads to the writer',
      run: async () => {
        const r = await ctx.runner.run(`echo 'show servers state writer' | socat stdio ${P.socket}`, {check: false})
        if (r.code !== 0)
          return {ok: false, detail: `no answer from the endpoint's runtime API: ${(r.stderr || r.stdout).trim().split('\n').pop()}`}
        const up = parseServersState(r.stdout)
          .filter(isUp)
          .map((s) => s.name)
        if (isGalera(ctx.inventory)) {
          // Every synced member answers; HAProxy sends writes to the first of them in the inventory's order.
          const order = galeraMembers(ctx.inventory).map((h) => h.name)
          const first = order.find((n) => up.includes(n))
          return first
            ? {ok: true, detail: `${listen(ctx.inventory)} -> ${first} (synced: ${up.join(', ')})`}
            : {ok: false, detail: 'no member answers as synced in the primary component'}
        }
        if (up.length === 1)
          return {
            ok: true,
            detail: `${listen(ctx.inventory)} -> ${up[0]}${up[0] === ctx.inventory.mysql?.primary ? '' : ` (not mysql.primary ${ctx.inventory.mysql?.primary}: promoted since the inventory was written)`}`,
          }
        return {ok: false, detail: up.length === 0 ? 'no database host answers as the writer' : `more than one writer: ${up.join(', ')}`}
      },
    },
  ]
}

export const dbEndpoint: Component = {
  name: 'db-endpoint',
  after: ['mysql'],
  appliesTo: (host, inv) => settings(inv) !== undefined && (isWeb(host) || host.db !== undefined),
  // The check's server certificate on database hosts; the endpoint's client certificate on web servers.
  certificates: ({host}) => [
    ...(host.db ? [{name: 'db-check', sans: [`DNS:${host.name}`, `IP:${host.address}`]}] : []),
    ...(isWeb(host) ? [{name: 'db-client', sans: [`DNS:${host.name}`, `IP:${host.address}`]}] : []),
  ],
  ports: ({inventory, host}) => {
    // A web server on the database host itself asks over loopback, which the firewall always allows.
    const from = webServers.except(inventory, host)
    return host.db && from.length
      ? [{port: settings(inventory)!.checkPort, proto: 'tcp', from, comment: 'database writer check from web servers'}]
      : []
  },
  targets: ({inventory, host}) =>
    isWeb(host) && host.monitoring.enabled
      ? [{job: 'db-endpoint', what: 'database endpoint metrics', port: settings(inventory)!.metricsPort}]
      : [],
  desired: ({inventory, host, material}) => {
    let s = emptyState()
    if (host.db) s = merge(s, writerCheck(inventory, host, {material}))
    if (isWeb(host)) s = merge(s, endpoint(inventory, host, {material}))
    return s
  },
  live: {
    prepare: () => ({
      script: ({host}) =>
        isWeb(host) && !host.roles.includes('lb')
          ? 'echo "$(systemctl is-enabled haproxy.service 2>/dev/null || echo none) $(systemctl is-active haproxy.service 2>/dev/null || true)"'
          : '',
      plan: (ctx, lines) => planDefaultHaproxy(ctx.host, lines),
    }),
  },
  checks,
}
