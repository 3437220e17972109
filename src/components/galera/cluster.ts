import type {Host, Inventory} from '../../inventory/index.js'
import {Failure} from '../../util/errors.js'
import type {TopologyProblem} from '../mysql/topology.js'

/*
 * The Galera topology (issue 17, item 6) as pure logic: which hosts are members, what a member's live state says,
 * and which member may start a new cluster. Everything that touches a host is in converge.ts.
 */

/** Galera's own ports between members: group communication, incremental and full state transfers. */
export const GALERA_PORTS = {group: 4567, ist: 4568, sst: 4444} as const

/** The pseudo-service the database's files notify in the galera topology: foobar's rolling restart, never the engine's. */
export const GALERA_RESTART = 'galera-rolling-restart'

/** Where the config and its TLS files live (a change to any of them needs a restart of that member). */
export const GALERA_STATE_FILE = '/var/lib/mysql/grastate.dat'

export const isGalera = (inv: Inventory): boolean => inv.mysql?.topology === 'galera'

/** The members in the endpoint's order of preference: the primary first, then the replicas as listed. */
export function galeraMembers(inv: Inventory): Host[] {
  const m = inv.mysql
  if (!m) return []
  const names = [...(m.primary ? [m.primary] : []), ...m.replicas]
  return names.flatMap((n) => inv.hosts.filter((h) => h.name === n))
}

export const galeraArbitrator = (inv: Inventory): Host | undefined =>
  isGalera(inv) && inv.mysql?.arbitrator ? inv.hosts.find((h) => h.name === inv.mysql!.arbitrator) : undefined

const bracket = (h: Host) => (h.family === 6 ? `[${h.address}]` : h.address)

/** gcomm:// address list: every member (the arbitrator joins through them). */
export const clusterAddress = (inv: Inventory): string => galeraMembers(inv).map(bracket).join(',')

export const nodeAddress = bracket

/** One member's live state, from factsScript's lines. */
export interface MemberFacts {
  /** mysqld answers on its socket. */
  up: boolean
  /** systemd's view of the database service (active, activating, failed, inactive). */
  service: string
  /** @@wsrep_on of the running server: off = a standalone server (a fresh install, or the primary/replica topology). */
  wsrepOn?: boolean
  status: Record<string, string>
  grastate?: {uuid: string; seqno: number; safeToBootstrap: boolean}
  /** The config or a TLS file changed after the server started: it runs with the old one. */
  stale: boolean
  /** The primary/replica topology's fence is still enabled. */
  fenceEnabled: boolean
  /** Replication from outside the cluster is configured (left from the primary/replica topology). */
  slaveConfigured: boolean
}

const STATUS = [
  'wsrep_cluster_status',
  'wsrep_cluster_size',
  'wsrep_local_state_comment',
  'wsrep_ready',
  'wsrep_cluster_state_uuid',
  'wsrep_last_committed',
  'wsrep_incoming_addresses',
  'wsrep_connected',
]

/** Read-only shell lines: the member's state. `files`: the config and TLS files whose change needs a restart. */
export function memberFactsScript(files: string[], service = 'mariadb'): string {
  // Every client call bounded: a joiner's server can accept a connection and not answer until its transfer is done.
  const M = 'timeout 10 mysql --protocol=socket --loose-skip-ssl --connect-timeout=3 -N -B'
  const list = STATUS.map((s) => `'${s.toUpperCase()}'`).join(',')
  return [
    `echo "service $(systemctl is-active ${service} 2>/dev/null || true)"`,
    `if command -v mysql >/dev/null 2>&1 && timeout 10 mysqladmin --loose-skip-ssl --connect-timeout=3 ping >/dev/null 2>&1; then`,
    '  echo up',
    `  ${M} -e "SELECT CONCAT('wsrep_on ', @@wsrep_on)" 2>/dev/null || true`,
    `  ${M} -e "SELECT CONCAT('status ', LOWER(VARIABLE_NAME), ' ', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN (${list})" 2>/dev/null || true`,
    `  timeout 10 mysql --protocol=socket --loose-skip-ssl --connect-timeout=3 -e 'SHOW ALL SLAVES STATUS\\G' 2>/dev/null | grep -q 'Master_Host:' && echo slave`,
    // Started before the newest of its files changed: it runs with the old ones (seconds since the epoch both).
    `  started=$(date -d "$(systemctl show -p ExecMainStartTimestamp --value ${service})" +%s 2>/dev/null || echo 0)`,
    `  newest=$(stat -c %Y ${files.map((f) => `'${f}'`).join(' ')} 2>/dev/null | sort -n | tail -1)`,
    `  [ -n "$newest" ] && [ "$newest" -ge "$started" ] && echo stale`,
    'else echo down; fi',
    `[ -f ${GALERA_STATE_FILE} ] && sed -n 's/^\\(uuid\\|seqno\\|safe_to_bootstrap\\):[[:space:]]*/grastate \\1 /p' ${GALERA_STATE_FILE}`,
    `[ "$(systemctl is-enabled foobar-db-fence 2>/dev/null)" = enabled ] && echo fence`,
    'true',
  ].join('\n')
}

export function parseMemberFacts(lines: string[]): MemberFacts {
  const f: MemberFacts = {up: false, service: 'unknown', status: {}, stale: false, fenceEnabled: false, slaveConfigured: false}
  const gra: Record<string, string> = {}
  for (const line of lines) {
    const [kind, ...rest] = line.trim().split(' ')
    if (kind === 'up') f.up = true
    else if (kind === 'service') f.service = rest[0] || 'unknown'
    else if (kind === 'wsrep_on') f.wsrepOn = rest[0] === '1' || rest[0] === 'ON'
    else if (kind === 'status' && rest[0]) f.status[rest[0]] = rest.slice(1).join(' ')
    else if (kind === 'grastate' && rest[0]) gra[rest[0]] = rest[1] ?? ''
    else if (kind === 'stale') f.stale = true
    else if (kind === 'fence') f.fenceEnabled = true
    else if (kind === 'slave') f.slaveConfigured = true
  }
  if (gra.uuid !== undefined) f.grastate = {uuid: gra.uuid, seqno: Number(gra.seqno ?? -1), safeToBootstrap: gra.safe_to_bootstrap === '1'}
  return f
}

/** In a cluster that takes writes: Primary component, synced, ready. */
export const inPrimary = (f: MemberFacts): boolean =>
  f.up && f.wsrepOn === true && f.status.wsrep_cluster_status === 'Primary' && f.status.wsrep_ready === 'ON'

export const synced = (f: MemberFacts): boolean => inPrimary(f) && f.status.wsrep_local_state_comment === 'Synced'

const NO_UUID = '00000000-0000-0000-0000-000000000000'

/** A member's position in the cluster's history, for the choice of who starts a new one (seqno -1: unknown). */
export interface Position {
  host: string
  uuid?: string
  seqno: number
  safeToBootstrap: boolean
}

export function positionOf(host: string, f: MemberFacts, recovered?: {uuid: string; seqno: number}): Position {
  const g = f.grastate
  const uuid = recovered?.uuid ?? (g && g.uuid !== NO_UUID ? g.uuid : undefined)
  return {host, uuid, seqno: recovered?.seqno ?? g?.seqno ?? -1, safeToBootstrap: g?.safeToBootstrap ?? false}
}

/**
 * Pure: who starts a new cluster when no member runs one. Never guesses: every member must have been asked.
 * - Members with a Galera history: the most advanced (highest seqno of the one history; ties: the one Galera marked
 *   safe_to_bootstrap, then the inventory's order). Two histories: refused.
 * - No member has one (a new cluster, or one made from the primary/replica topology): the inventory's primary, whose
 *   data the others receive by state transfer.
 */
export function chooseBootstrap(inv: Inventory, positions: Position[]): {host: string; why: string} {
  const order = galeraMembers(inv).map((h) => h.name)
  const withHistory = positions.filter((p) => p.uuid)
  if (withHistory.length === 0) {
    const primary = inv.mysql!.primary ?? order[0]!
    return {host: primary, why: `no member has a cluster history: ${primary} (the primary) starts it with its data`}
  }
  const uuids = [...new Set(withHistory.map((p) => p.uuid))]
  if (uuids.length > 1)
    throw new Failure(
      `the members have two cluster histories (${withHistory.map((p) => `${p.host}: ${p.uuid}`).join(', ')}): foobar will not choose between them; keep the one you want, remove ${'/var/lib/mysql/grastate.dat'} on the others, then provision again`,
    )
  const unknown = withHistory.filter((p) => p.seqno < 0)
  if (unknown.length)
    throw new Failure(
      `the position of ${unknown.map((p) => p.host).join(', ')} is unknown (seqno -1 after recovery): foobar will not guess who is most advanced`,
    )
  const best = [...withHistory].sort(
    (a, b) => b.seqno - a.seqno || Number(b.safeToBootstrap) - Number(a.safeToBootstrap) || order.indexOf(a.host) - order.indexOf(b.host),
  )[0]!
  const others = withHistory.filter((p) => p !== best).map((p) => `${p.host} ${p.seqno}`)
  return {host: best.host, why: `the most advanced member (seqno ${best.seqno}${others.length ? `; ${others.join(', ')}` : ''})`}
}

export type GaleraAction = {kind: 'unfence'} | {kind: 'join'; why: string} | {kind: 'restart'; why: string} | {kind: 'detach'}

/** Pure: what one member needs (the cross-member order, and who starts a cluster, are converge's). */
export function planMember(f: MemberFacts, configChanged: boolean): GaleraAction[] {
  const actions: GaleraAction[] = []
  if (f.fenceEnabled) actions.push({kind: 'unfence'})
  if (f.slaveConfigured) actions.push({kind: 'detach'})
  if (!f.up) actions.push({kind: 'join', why: `its database is ${f.service === 'unknown' ? 'down' : f.service}`})
  else if (f.wsrepOn !== true) actions.push({kind: 'join', why: 'a standalone server (not in the cluster yet)'})
  else if (!inPrimary(f))
    actions.push({kind: 'join', why: `not in the cluster's primary component (${f.status.wsrep_cluster_status ?? 'unknown'})`})
  else if (configChanged || f.stale) actions.push({kind: 'restart', why: 'its config or certificate changed'})
  return actions
}

export function describeGalera(a: GaleraAction): string {
  switch (a.kind) {
    case 'unfence':
      return 'stop the primary/replica fence (in Galera the quorum fences)'
    case 'detach':
      return 'remove replication from outside the cluster (RESET SLAVE ALL)'
    case 'join':
      return `start in the cluster: ${a.why} (joins by state transfer; the most advanced member starts a cluster when none runs)`
    case 'restart':
      return `restart to load the change, one member at a time, waiting for it to be synced: ${a.why}`
  }
}

export interface MemberStatus {
  host: string
  role: 'member'
  up: boolean
  error?: string
  service?: string
  clusterStatus?: string
  state?: string
  clusterSize?: number
  clusterUuid?: string
  lastCommitted?: number
  ready?: boolean
}

export function memberStatus(host: string, f: MemberFacts): MemberStatus {
  return {
    host,
    role: 'member',
    up: f.up,
    service: f.service,
    clusterStatus: f.status.wsrep_cluster_status,
    state: f.status.wsrep_local_state_comment,
    clusterSize: f.status.wsrep_cluster_size === undefined ? undefined : Number(f.status.wsrep_cluster_size),
    clusterUuid: f.status.wsrep_cluster_state_uuid,
    lastCommitted: f.status.wsrep_last_committed === undefined ? undefined : Number(f.status.wsrep_last_committed),
    ready: f.status.wsrep_ready === undefined ? undefined : f.status.wsrep_ready === 'ON',
  }
}

/**
 * Pure: is the Galera cluster right? Every member synced in one primary component whose size counts every member
 * and the arbitrator. Each problem says what to do. (`writable`: the members that take writes now.)
 */
export function assessGalera(inv: Inventory, statuses: MemberStatus[]): {writable: string[]; problems: TopologyProblem[]} {
  const problems: TopologyProblem[] = []
  const want = galeraMembers(inv).length + (galeraArbitrator(inv) ? 1 : 0)
  const writable = statuses.filter((s) => s.up && s.clusterStatus === 'Primary' && s.ready).map((s) => s.host)
  for (const s of statuses) {
    if (s.error)
      problems.push({
        hosts: [s.host],
        problem: `unreachable: ${s.error}`,
        advice: `check the host and SSH (foobar verify --limit ${s.host})`,
      })
    else if (!s.up)
      problems.push({
        hosts: [s.host],
        problem: `database ${s.service && s.service !== 'unknown' ? s.service : 'down'}`,
        advice: `foobar provision --limit ${s.host} starts it in the cluster (state transfer from a synced member)`,
      })
    else if (s.clusterStatus !== 'Primary')
      problems.push({
        hosts: [s.host],
        problem: `not in the primary component (${s.clusterStatus ?? 'not a cluster member'}): it refuses writes`,
        advice:
          writable.length > 0
            ? `foobar provision restarts it into the cluster`
            : 'no member has a quorum: foobar provision starts the cluster again on the most advanced member once every member can be asked',
      })
    else if (s.state !== 'Synced')
      problems.push({
        hosts: [s.host],
        problem: `${s.state ?? 'unknown state'}: catching up with the cluster`,
        advice: 'wait; it takes writes once synced',
      })
  }
  const uuids = [...new Set(statuses.filter((s) => s.clusterStatus === 'Primary' && s.clusterUuid).map((s) => s.clusterUuid))]
  if (uuids.length > 1)
    problems.push({
      hosts: statuses.filter((s) => s.clusterStatus === 'Primary').map((s) => s.host),
      problem: `two clusters take writes (${uuids.join(', ')})`,
      advice:
        'stop the members of the smaller one now, then foobar provision makes them join the other (their writes since the split are lost)',
    })
  const sizes = statuses.filter((s) => s.clusterStatus === 'Primary').map((s) => s.clusterSize ?? 0)
  const size = Math.max(0, ...sizes)
  if (writable.length > 0 && size < want)
    problems.push({
      hosts: statuses.filter((s) => s.clusterStatus === 'Primary').map((s) => s.host),
      problem: `the cluster has ${size} of ${want} (members${galeraArbitrator(inv) ? ' and the arbitrator' : ''}): one more failure may cost the quorum`,
      advice: `bring the missing ${want - size > 1 ? 'ones' : 'one'} back (foobar provision)`,
    })
  return {writable, problems}
}
