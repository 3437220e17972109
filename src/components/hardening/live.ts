import {shq} from '../../util/shell.js'
import type {HardeningSpec} from './spec.js'
import {isContainer} from '../../util/virt.js'
import {sysctlSkipReason} from './sysctl.js'
import {RKHUNTER_UNIT, rkhunterDbState, rkhunterFactsScript} from './rkhunter.js'

/** One step of the hardening beyond files and packages, as planned against the live host. */
export type HardeningAction =
  | {kind: 'mode'; path: string; mode: number; was: string}
  | {kind: 'disable'; unit: string; was: string}
  | {kind: 'stop'; unit: string; was: string}
  | {kind: 'sysctl'; set: Record<string, string>; skipped: Record<string, string>}
  | {kind: 'sshd'; reason: string}
  | {kind: 'rkhunter'; unit: string}

/**
 * Live state, in one round trip with the other facts (the engine tags the lines). The lines are those of the
 * per-key form (`echo "sysctl K $(sysctl -n K || echo -)"`, `echo "mode P $(stat -c '%a %U %G' P)"` for each path
 * that exists, units.ts for the units) with a fixed number of processes: a plain key is read by the shell itself
 * from its file under /proc/sys (first line; `-` when there is none or it cannot be opened), the paths take one `stat`.
 */
export function hardeningFactsScript(spec: HardeningSpec): string {
  const lines = Object.keys(spec.sysctl).map((k) => {
    const file = `/proc/sys/${k.replace(/\./g, '/')}`
    const slow = `echo "sysctl ${k} $(sysctl -n ${shq(k)} 2>/dev/null || echo -)"`
    if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(k)) return slow
    // No file: sysctl -n reads the same file (dots to slashes), so it could only answer `-` too (a container hides
    // kernel.sysrq and kernel.yama.ptrace_scope: two processes a run saved there).
    return `fb_v=-; if [ -f ${file} ]; then { IFS= read -r fb_v || :; } 2>/dev/null < ${file}; fi; echo "sysctl ${k} $fb_v"`
  })
  if (spec.modes.length) {
    lines.push(
      [
        'fb_modes() {',
        'set --',
        ...spec.modes.map(({path}) => `if [ -e ${shq(path)} ]; then set -- "$@" ${shq(path)}; fi`),
        `if [ $# -gt 0 ]; then stat -c 'mode %n %a %U %G' -- "$@"; fi`,
        '}',
        'fb_modes',
      ].join('\n'),
    )
  }
  if (spec.rkhunter) lines.push(rkhunterFactsScript())
  return lines.filter(Boolean).join('\n')
}

/** The units hardening turns off or stops: their `unit` lines come with the facts (LivePlanner.units). */
export const hardeningUnits = (spec: HardeningSpec): string[] => [
  ...spec.disable,
  ...spec.hostOnly,
  ...(spec.rkhunter ? [RKHUNTER_UNIT] : []),
]

export interface HardeningFacts {
  sysctl: Record<string, string | undefined>
  modes: Record<string, {mode: number; owner: string; group: string}>
  units: Record<string, {enabled: string; active: string}>
  /** rkhunter's file properties database: `built` or `missing` (absent: rkhunter is not installed). */
  rkhunter?: string
}

/** Pure parser of the hardening facts lines. */
export function parseHardeningFacts(lines: string[]): HardeningFacts {
  const out: HardeningFacts = {sysctl: {}, modes: {}, units: {}}
  for (const line of lines) {
    const [kind, name, ...rest] = line.split(' ')
    if (!name) continue
    if (kind === 'sysctl') out.sysctl[name] = rest[0] === '-' || rest[0] === undefined ? undefined : rest.join(' ')
    else if (kind === 'mode') out.modes[name] = {mode: parseInt(rest[0] ?? '0', 8), owner: rest[1] ?? '', group: rest[2] ?? ''}
    else if (kind === 'unit') out.units[name] = {enabled: rest[0] ?? 'none', active: rest[1] ?? ''}
    else if (kind === 'rkhunter') out.rkhunter = name
  }
  return out
}

/** Units that are not installed, already off, or masked need nothing. */
const isOff = (u: {enabled: string; active: string}) =>
  ['none', 'disabled', 'masked', 'static', 'not-found'].includes(u.enabled) && u.active !== 'active'

/**
 * Pure: what to change so the host matches the spec. `sshdChanged`: the drop-in changes in this plan, or a
 * guarded reload was cut short by an earlier run.
 */
export function planHardening(spec: HardeningSpec, facts: HardeningFacts, virt: string, sshd: string | undefined): HardeningAction[] {
  const actions: HardeningAction[] = []
  for (const {path, mode} of spec.modes) {
    const live = facts.modes[path]
    if (live && (live.mode !== mode || live.owner !== 'root' || live.group !== 'root')) {
      actions.push({kind: 'mode', path, mode, was: `${live.mode.toString(8)} ${live.owner}:${live.group}`})
    }
  }
  for (const unit of spec.disable) {
    const live = facts.units[unit]
    if (live && !isOff(live)) actions.push({kind: 'disable', unit, was: `${live.enabled}, ${live.active}`})
  }
  if (isContainer(virt)) {
    for (const unit of spec.hostOnly) {
      const live = facts.units[unit]
      if (live && live.active !== 'inactive') actions.push({kind: 'stop', unit, was: live.active})
    }
  }
  const set: Record<string, string> = {}
  const skipped: Record<string, string> = {}
  for (const [key, value] of Object.entries(spec.sysctl)) {
    const live = facts.sysctl[key]
    const why = sysctlSkipReason(key, virt, live)
    if (why) skipped[key] = why
    else if (live !== value) set[key] = value
  }
  if (Object.keys(set).length) actions.push({kind: 'sysctl', set, skipped})
  if (spec.rkhunter && rkhunterDbState(facts.rkhunter, facts.units[RKHUNTER_UNIT]) === 'missing') {
    actions.push({kind: 'rkhunter', unit: RKHUNTER_UNIT})
  }
  if (sshd) actions.push({kind: 'sshd', reason: sshd})
  return actions
}

export function describeHardening(a: HardeningAction): string {
  switch (a.kind) {
    case 'mode':
      return `tighten ${a.path} to ${a.mode.toString(8)} root:root (was ${a.was})`
    case 'disable':
      return `stop and disable ${a.unit} (was ${a.was})`
    case 'stop':
      return `stop ${a.unit}: not run in a container (was ${a.was})`
    case 'sysctl': {
      const skipped = Object.keys(a.skipped)
      return `set ${Object.entries(a.set)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}${skipped.length ? ` (skipped: ${skipped.length} keys ${[...new Set(Object.values(a.skipped))].join('; ')})` : ''}`
    }
    case 'sshd':
      return `reload ssh, confirmed by a fresh SSH connection (${a.reason})`
    case 'rkhunter':
      return `build rkhunter's file properties database in the background (${a.unit})`
  }
}
