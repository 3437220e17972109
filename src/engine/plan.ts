import {createHash} from 'node:crypto'
import {
  type Change,
  type DesiredFile,
  type HostPlan,
  type InstallGuard,
  PENDING_REASON,
  type PlanContext,
  type ServiceSpec,
} from './contract.js'
import {type HostDesired, PRIVATE_KEY_BLOCK, secretIfPrivateKey} from './desired.js'
import {unifiedDiff} from './diff.js'
import {isContainer} from '../util/virt.js'
import {type FactQuery, type HostFacts, MAX_CONTENT} from './facts.js'

export type {Change, HostPlan} from './contract.js'

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** A desired file's content hash, computed once however many times a run compares it (contentsWanted, planHost, a replan). */
const contentHashes = new WeakMap<DesiredFile, string>()
function contentSha(f: DesiredFile): string {
  let h = contentHashes.get(f)
  if (h === undefined) contentHashes.set(f, (h = sha256(f.content)))
  return h
}

export const POLICY_RC_D = '/usr/sbin/policy-rc.d'

/**
 * Pure: Debian's policy-rc.d for one package transaction (invoke-rc.d and deb-systemd-invoke ask it before they
 * start, stop or restart a service): these units are left alone (101: not run), every other service as always.
 * invoke-rc.d may pass `--quiet` first; deb-systemd-invoke passes the unit with its `.service`.
 */
export function startGuard(forPackage: string, units: string[]): InstallGuard {
  const names = [...new Set(units.map((u) => u.replace(/\.service$/, '')))].sort()
  for (const n of names) if (!/^[A-Za-z0-9@._-]+$/.test(n)) throw new Error(`service name not allowed in policy-rc.d: ${n}`)
  return {
    package: forPackage,
    path: POLICY_RC_D,
    mode: 0o755,
    note: `services foobar starts itself once configured: ${names.join(', ')}`,
    content: `#!/bin/sh
# Written by foobar for its package transaction only, and removed after it: the maintainer scripts do not start
# these services with the distribution's defaults; foobar starts them once their configuration is in place.
[ "$1" = --quiet ] && shift
case "\${1%.service}" in
  ${names.join('|')}) exit 101 ;;
esac
exit 0
`,
  }
}

/** The facts a host's plan needs. */
export function factQuery(d: HostDesired): FactQuery {
  return {
    packages: d.packages,
    ...(Object.keys(d.versions ?? {}).length ? {versions: Object.keys(d.versions!).sort()} : {}),
    files: [
      ...d.files.map((f) => ({path: f.path, secret: secretIfPrivateKey(f).secret})),
      ...d.absent.map((path) => ({path, secret: true})),
    ],
    services: [...new Set(d.services.map((s) => s.name))],
    live: d.live.map(({component, planner}) => {
      const ctx = {inventory: d.inventory, host: d.host}
      const units = planner.units?.(ctx)
      return {component, script: planner.script(ctx), ...(units?.length ? {units} : {})}
    }),
  }
}

/**
 * Pure: the files whose content a plan's diffs need and the facts lack: the non-secret desired files that differ
 * from the host's regular file of at most MAX_CONTENT bytes. None on a host that has every file as desired.
 */
export function contentsWanted(d: HostDesired, facts: HostFacts): string[] {
  const wanted = new Set<string>()
  for (const desired of d.files) {
    const f = secretIfPrivateKey(desired)
    const fact = facts.files[f.path]
    if (f.secret || !fact?.exists || fact.content !== undefined || fact.size === undefined || fact.size > MAX_CONTENT) continue
    if (fact.sha256 !== contentSha(desired)) wanted.add(f.path)
  }
  return [...wanted]
}

/**
 * Pure: (desired, facts) -> changes. Provision applies exactly this list; `plan` prints it. A second run on a
 * converged host yields no change at all.
 */
export function planHost(d: HostDesired, facts: HostFacts): HostPlan {
  const changes: Change[] = []
  const pinned = d.versions ?? {}
  const versions = Object.keys(pinned)
    .sort()
    .filter((p) => facts.packages[p] !== 'installed' || facts.versions?.[p] !== pinned[p])
    .map((p) => ({name: p, ...(facts.packages[p] === 'installed' && facts.versions?.[p] ? {from: facts.versions[p]} : {}), to: pinned[p]!}))
  const missing = d.packages.filter((p) => facts.packages[p] !== 'installed' || versions.some((v) => v.name === p))
  // Only for a first install: an upgrade's maintainer scripts do what they always do.
  const guards = (d.installGuards ?? []).filter((g) => missing.includes(g.package) && facts.packages[g.package] !== 'installed')
  // Units this transaction brings (none on the host yet) are started by foobar once their files are in place, not
  // first by the packages' maintainer scripts with the distribution's defaults and then again.
  const newUnits = d.services.map((s) => s.name).filter((n) => (facts.services[n]?.enabled ?? 'not-found') === 'not-found')
  if (missing.length && newUnits.length) guards.push(startGuard(missing[0]!, newUnits))
  if (missing.length) {
    changes.push({kind: 'packages', install: missing, ...(versions.length ? {versions} : {}), ...(guards.length ? {guards} : {})})
  }

  const notify = new Set<string>()
  for (const desired of d.files) {
    // A private key is secret whatever was declared (desiredState does this too; a plan built from other input as well).
    const f = secretIfPrivateKey(desired)
    const fact = facts.files[f.path] ?? {exists: false}
    const wantSha = contentSha(desired)
    let change: Change | undefined
    if (!fact.exists) {
      change = {
        kind: 'file',
        path: f.path,
        action: 'create',
        file: f,
        detail: 'create',
        diff: f.secret ? '(secret content not shown)' : unifiedDiff('', f.content, f.path),
        component: f.component,
      }
    } else if (fact.sha256 !== wantSha) {
      const diff = f.secret
        ? '(secret content changed; not shown)'
        : fact.content !== undefined && PRIVATE_KEY_BLOCK.test(fact.content)
          ? '(content differs; the file on the host holds a private key, not shown)'
          : fact.content !== undefined
            ? unifiedDiff(fact.content, f.content, f.path)
            : '(content differs)'
      change = {kind: 'file', path: f.path, action: 'update', file: f, detail: 'content', diff, component: f.component}
    } else if (fact.mode !== f.mode || fact.owner !== f.owner || fact.group !== f.group) {
      const was = `${fact.mode?.toString(8)} ${fact.owner}:${fact.group}`
      change = {
        kind: 'file',
        path: f.path,
        action: 'attributes',
        file: f,
        detail: `mode/owner ${was} -> ${f.mode.toString(8)} ${f.owner}:${f.group}`,
        component: f.component,
      }
    }
    if (change) {
      changes.push(change)
      if (change.kind === 'file' && change.action !== 'attributes') for (const s of f.notify ?? []) notify.add(s)
    }
  }
  for (const path of d.absent) {
    if (facts.files[path]?.exists) {
      // Removing a file that a daemon reads (nginx's default site) needs the same reload as changing one.
      const owner = d.services.find((s) => path.includes(`/${s.name}/`))
      changes.push({kind: 'remove', path, component: owner?.component})
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
    if (enable || start) changes.push({kind: 'service', name: s.name, enable, start, component: s.component})
  }
  for (const name of [...new Set([...notify, ...facts.pendingReloads])].sort()) {
    const spec = byName.get(name)
    if (!spec) continue
    const reason = notify.has(name) ? 'config changed' : PENDING_REASON
    changes.push({kind: 'reload', name, how: spec.onChange, reason, component: spec.component})
  }
  const ctx: PlanContext = {
    inventory: d.inventory,
    host: d.host,
    ports: d.ports,
    controlAddress: d.controlAddress,
    files: d.files,
    virt: facts.virt,
    notified: notify,
    pending: facts.pendingReloads,
  }
  for (const {component, planner} of d.live) {
    for (const action of planner.plan(ctx, facts.live[component] ?? [])) changes.push({kind: 'live', component, action})
  }
  return {host: d.host.name, changes}
}

export function describe(change: Change): string {
  switch (change.kind) {
    case 'packages': {
      // A pinned package's version change reads like any other change: from -> to.
      const pinned = new Set((change.versions ?? []).map((v) => v.name))
      const plain = change.install.filter((p) => !pinned.has(p))
      return [
        ...(plain.length ? [`install packages: ${plain.join(' ')}`] : []),
        ...(change.versions ?? []).map((v) =>
          v.from ? `package ${v.name} ${v.from} -> ${v.to} (pinned)` : `install package ${v.name} ${v.to} (pinned)`,
        ),
        ...(change.guards ?? []).map((g) => `${g.path} during the install only (${g.note ?? `for ${g.package}`}; unless a file is there)`),
      ].join('\n  ~ ')
    }
    case 'file':
      return `${change.action === 'create' ? 'create' : change.action === 'update' ? 'update' : 'fix'} ${change.path}${change.action === 'attributes' ? ` (${change.detail})` : ''}`
    case 'remove':
      return `remove ${change.path}`
    case 'service':
      return `${[change.enable ? 'enable' : '', change.start ? 'start' : ''].filter(Boolean).join(' and ')} ${change.name}`
    case 'reload':
      return `${change.how} ${change.name} (${change.reason})`
    case 'live':
      return `${change.action.summary}${(change.action.detail ?? []).map((l) => `\n      ${l}`).join('')}`
  }
}
