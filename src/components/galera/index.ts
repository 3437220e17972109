import type {Check, CheckContext, Component, LiveAction} from '../../engine/contract.js'
import {emptyState, file, leafKey} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {hostCidr} from '../../util/address.js'
import {TLS_PATHS} from '../tls/profile.js'
import {
  GALERA_PORTS,
  GALERA_RESTART,
  clusterAddress,
  describeGalera,
  galeraArbitrator,
  galeraMembers,
  isGalera,
  memberFactsScript,
  parseMemberFacts,
  planMember,
  synced,
} from './cluster.js'
import {convergeGalera, memberFacts} from './converge.js'

export {GALERA_RESTART, isGalera, galeraMembers} from './cluster.js'

/** The files whose change a member loads only on a restart: its config and its TLS material. */
export const restartFiles = (configPath: string): string[] => [configPath, TLS_PATHS.dbCa, TLS_PATHS.dbCert, TLS_PATHS.dbKey]

const isMember = (h: Host, inv: Inventory) => isGalera(inv) && h.db !== undefined
const cidrs = (hosts: Host[]) => hosts.map(hostCidr)

/** Galera's ports on a member: group communication from members and the arbitrator; state transfers from members. */
export function galeraPorts(inv: Inventory, host: Host) {
  const others = galeraMembers(inv).filter((h) => h !== host)
  const arb = galeraArbitrator(inv)
  if (others.length === 0) return []
  return [
    {port: GALERA_PORTS.group, proto: 'tcp' as const, from: cidrs(arb ? [...others, arb] : others), comment: 'galera group communication'},
    {port: GALERA_PORTS.ist, proto: 'tcp' as const, from: cidrs(others), comment: 'galera incremental state transfer'},
    {port: GALERA_PORTS.sst, proto: 'tcp' as const, from: cidrs(others), comment: 'galera full state transfer (mariabackup)'},
  ]
}

/**
 * The Galera cluster's membership (topology: galera): members started one at a time, a new cluster only on the
 * most advanced member and only when every member was asked, rolling restarts for config changes. The database's
 * files themselves are the mysql component's (they notify this step, never a plain restart).
 */
export function galeraComponent(configPath: (inv: Inventory) => string): Component {
  return {
    name: 'galera',
    after: ['mysql'],
    rolling: 'none',
    appliesTo: isMember,
    live: {
      prepare: (inventory) => {
        if (!isGalera(inventory)) return undefined
        const files = restartFiles(configPath(inventory))
        const changed = new Set<string>()
        return {
          script: () => memberFactsScript(files),
          plan: (ctx, lines): LiveAction[] => {
            const notified = ctx.notified.has(GALERA_RESTART)
            if (notified) changed.add(ctx.host.name)
            return planMember(parseMemberFacts(lines), notified).map((a) => ({
              kind: a.kind,
              summary: describeGalera(a),
              data: {...a},
              ownCheck: true,
            }))
          },
          converge: (ctx) => convergeGalera(inventory, ctx.connect, {files, changed, step: ctx.step}),
        }
      },
    },
    checks: (ctx) => galeraChecks(ctx, restartFiles(configPath(ctx.inventory))),
  }
}

function galeraChecks(ctx: CheckContext, files: string[]): Check[] {
  const inv = ctx.inventory
  const want = galeraMembers(inv).length + (galeraArbitrator(inv) ? 1 : 0)
  return [
    {
      name: 'galera: synced in the primary component',
      run: async () => {
        const f = await memberFacts(ctx.runner, files)
        const size = Number(f.status.wsrep_cluster_size ?? 0)
        if (!synced(f))
          return {
            ok: false,
            detail: f.up
              ? `${f.status.wsrep_cluster_status ?? 'not in a cluster'}, ${f.status.wsrep_local_state_comment ?? '?'}`
              : `database ${f.service}`,
          }
        return size === want
          ? {ok: true, detail: `synced, cluster of ${size}`}
          : {ok: false, detail: `synced, but the cluster has ${size} of ${want} (members and arbitrator)`}
      },
    },
    {
      name: 'galera: replication over tls',
      run: async () => {
        const r = await ctx.runner.run(`mysql --protocol=socket --loose-skip-ssl -N -B -e "SELECT @@wsrep_provider_options"`, {
          check: false,
        })
        return /socket\.ssl = YES/.test(r.stdout)
          ? {ok: true, detail: 'group communication over TLS (internal CA)'}
          : {ok: false, detail: 'socket.ssl is not on'}
      },
    },
  ]
}

const ARB_DIR = '/etc/foobar/galera'
export const ARBITRATOR_PATHS = {
  defaults: '/etc/default/garb',
  dropIn: '/etc/systemd/system/garb.service.d/foobar.conf',
  ca: `${ARB_DIR}/ca.pem`,
  cert: `${ARB_DIR}/arbitrator.crt`,
  key: `${ARB_DIR}/arbitrator.key`,
} as const

/** The Galera arbitrator (garbd) on `mysql.arbitrator`: a vote in the quorum, no data. */
export const galeraArbitratorComponent: Component = {
  name: 'galera-arbitrator',
  after: ['base'],
  appliesTo: (host, inv) => galeraArbitrator(inv) === host,
  certificates: ({host}) => [{name: 'galera', sans: [`DNS:${host.name}`, `IP:${host.address}`]}],
  ports: ({inventory}) => [
    {port: GALERA_PORTS.group, proto: 'tcp' as const, from: cidrs(galeraMembers(inventory)), comment: 'galera group communication'},
  ],
  desired: ({inventory, host, material}) => {
    const s = emptyState()
    const P = ARBITRATOR_PATHS
    const leaf = material?.leaves[leafKey('galera', host.name)]
    s.packages.push('galera-arbitrator-4')
    if (material && leaf) {
      s.files.push(
        file(P.ca, material.internalCa, {notify: ['garb']}),
        file(P.cert, leaf.cert, {notify: ['garb']}),
        file(P.key, leaf.key, {mode: 0o600, secret: true, notify: ['garb']}),
      )
    }
    const view = {
      host: host.name,
      nodes: clusterAddress(inventory)
        .split(',')
        .map((a) => `${a}:${GALERA_PORTS.group}`)
        .join(' '),
    }
    s.files.push(
      file(P.defaults, renderTemplate('galera/garb', {...view, group: inventory.mysql!.clusterName}), {
        notify: ['garb'],
        validate: {mode: 'candidate', command: 'sh -n {}'},
      }),
      file(P.dropIn, renderTemplate('galera/garb.service.conf', {...view, ca: P.ca, cert: P.cert, key: P.key}), {notify: ['garb']}),
    )
    // No health gate here: on a first provision the members form the cluster after every host's own changes, and
    // garbd, restarted by systemd every 5 s until then, joins it on its own (verify counts it in the cluster size).
    s.services.push({name: 'garb', onChange: 'restart'})
    return s
  },
}
