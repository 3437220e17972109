import {createHash} from 'node:crypto'
import type {HostDesired} from '../components/index.js'
import type {DesiredFile, ServiceSpec} from '../components/types.js'
import {FIREWALL} from '../components/firewall/index.js'
import {SSHD_GUARDED} from '../components/hardening/index.js'
import {isContainer} from '../components/virt.js'
import {type HardeningAction, describeHardening, hardeningFactsScript, parseHardeningFacts, planHardening} from '../components/hardening/live.js'
import {compareFirewall, firewallFactsScript, parseFirewallFacts} from '../components/firewall/live.js'
import {type DbAction, dbFactsScript, parseDbFacts, planReplication} from '../components/mysql/replication.js'
import {unifiedDiff} from './diff.js'
import type {FactQuery, HostFacts} from './facts.js'

export type Change =
  | {kind: 'packages'; install: string[]}
  | {kind: 'file'; path: string; action: 'create' | 'update' | 'attributes'; diff?: string; file: DesiredFile; detail: string}
  | {kind: 'remove'; path: string}
  | {kind: 'service'; name: string; enable: boolean; start: boolean}
  | {kind: 'reload'; name: string; how: 'reload' | 'restart'; reason: string}
  | {kind: 'firewall'; backend: 'ufw' | 'iptables'; reason: string; missing: string[]; extra: string[]}
  | {kind: 'replication'; action: DbAction}
  | {kind: 'hardening'; action: HardeningAction}

export interface HostPlan {
  host: string
  changes: Change[]
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** The facts a host's plan needs. */
export function factQuery(d: HostDesired): FactQuery {
  return {
    packages: d.packages,
    files: [...d.files.map((f) => ({path: f.path, secret: f.secret})), ...d.absent.map((path) => ({path, secret: true}))],
    services: [...new Set(d.services.map((s) => s.name))],
    extra: [d.firewall ? firewallFactsScript(d.host) : '', d.replication ? dbFactsScript(d.replication.inventory.mysql!.replicationUser) : '', d.hardening ? hardeningFactsScript(d.hardening) : ''].filter(Boolean).join('\n') || undefined,
  }
}

/**
 * Pure: (desired, facts) -> changes. Provision applies exactly this list; `plan` prints it. A second run on a
 * converged host yields no change at all.
 */
export function planHost(d: HostDesired, facts: HostFacts): HostPlan {
  const changes: Change[] = []
  const missing = d.packages.filter((p) => facts.packages[p] !== 'installed')
  if (missing.length) changes.push({kind: 'packages', install: missing})

  const notify = new Set<string>()
  for (const f of d.files) {
    const fact = facts.files[f.path] ?? {exists: false}
    const wantSha = sha256(f.content)
    let change: Change | undefined
    if (!fact.exists) {
      change = {kind: 'file', path: f.path, action: 'create', file: f, detail: 'create', diff: f.secret ? '(secret content not shown)' : unifiedDiff('', f.content, f.path)}
    } else if (fact.sha256 !== wantSha) {
      const diff = f.secret ? '(secret content changed; not shown)' : fact.content !== undefined ? unifiedDiff(fact.content, f.content, f.path) : '(content differs)'
      change = {kind: 'file', path: f.path, action: 'update', file: f, detail: 'content', diff}
    } else if (fact.mode !== f.mode || fact.owner !== f.owner || fact.group !== f.group) {
      const was = `${fact.mode?.toString(8)} ${fact.owner}:${fact.group}`
      change = {kind: 'file', path: f.path, action: 'attributes', file: f, detail: `mode/owner ${was} -> ${f.mode.toString(8)} ${f.owner}:${f.group}`}
    }
    if (change) {
      changes.push(change)
      if (change.kind === 'file' && change.action !== 'attributes') for (const s of f.notify ?? []) notify.add(s)
    }
  }
  for (const path of d.absent) {
    if (facts.files[path]?.exists) {
      changes.push({kind: 'remove', path})
      // Removing a file that a daemon reads (nginx's default site) needs the same reload as changing one.
      for (const s of d.services) if (path.includes(`/${s.name}/`)) notify.add(s.name)
    }
  }

  // Services for the host machine's hardware are left alone in a container (their unit is conditioned out there).
  const here = d.services.filter((s) => !(s.notInContainer && isContainer(facts.virt)))
  const byName = new Map<string, ServiceSpec>(here.map((s) => [s.name, s]))
  for (const s of byName.values()) {
    const fact = facts.services[s.name]
    const enable = fact?.enabled !== 'enabled'
    const start = fact?.active !== 'active'
    if (enable || start) changes.push({kind: 'service', name: s.name, enable, start})
  }
  for (const name of [...new Set([...notify, ...facts.pendingReloads])].sort()) {
    const spec = byName.get(name)
    if (!spec) continue
    const reason = notify.has(name) ? 'config changed' : 'pending from an interrupted run'
    changes.push({kind: 'reload', name, how: spec.onChange, reason})
  }
  if (d.firewall) {
    const rulesFileChanged = changes.some((c) => c.kind === 'file' && d.files.find((f) => f.path === c.path)?.notify?.includes(FIREWALL))
    const drift = compareFirewall(d.host, d.firewall.rules, parseFirewallFacts(facts.firewall), d.firewall)
    if (rulesFileChanged || !drift.inSync) {
      const reason = [...drift.notes, ...(drift.missing.length ? [`${drift.missing.length} rules missing`] : []), ...(drift.extra.length ? [`${drift.extra.length} rules not in the inventory`] : [])]
      changes.push({kind: 'firewall', backend: d.host.firewall.backend, reason: reason.join(', ') || 'rules changed', missing: drift.missing, extra: drift.extra})
    }
  }
  if (d.hardening) {
    const dropIn = changes.some((c) => c.kind === 'file' && c.action !== 'attributes' && c.file.notify?.includes(SSHD_GUARDED))
    const sshd = dropIn ? 'config changed' : facts.pendingReloads.includes(SSHD_GUARDED) ? 'pending from an interrupted run' : undefined
    for (const action of planHardening(d.hardening, parseHardeningFacts(facts.hardening), facts.virt, sshd)) changes.push({kind: 'hardening', action})
  }
  if (d.replication && d.host.db) {
    const inv = d.replication.inventory
    const db = parseDbFacts(facts.db, inv.mysql!.replicationUser)
    for (const action of planReplication(inv, d.host, db, d.replication.password)) changes.push({kind: 'replication', action})
  }
  return {host: d.host.name, changes}
}

export function describe(change: Change): string {
  switch (change.kind) {
    case 'packages':
      return `install packages: ${change.install.join(' ')}`
    case 'file':
      return `${change.action === 'create' ? 'create' : change.action === 'update' ? 'update' : 'fix'} ${change.path}${change.action === 'attributes' ? ` (${change.detail})` : ''}`
    case 'remove':
      return `remove ${change.path}`
    case 'service':
      return `${[change.enable ? 'enable' : '', change.start ? 'start' : ''].filter(Boolean).join(' and ')} ${change.name}`
    case 'reload':
      return `${change.how} ${change.name} (${change.reason})`
    case 'hardening':
      return describeHardening(change.action)
    case 'replication': {
      const a = change.action
      return a.kind === 'users' ? `replication user for ${a.hosts.join(', ')} (TLS required)` : a.kind === 'seed' ? `seed from ${a.from} and replicate (GTID, TLS)` : `replicate from ${a.from}: ${a.why}`
    }
    case 'firewall':
      return `activate the ${change.backend} firewall (${change.reason})${change.missing.map((m) => `\n      + ${m}`).join('')}${change.extra.map((m) => `\n      - ${m}`).join('')}`
  }
}
