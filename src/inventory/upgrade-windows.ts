import type {Host, Inventory} from './resolved.js'

/*
 * Each host's automatic-upgrade window, derived from its place among the hosts it shares a role with (pure).
 *
 * Hosts that share a role are never in the same slot: the hosts are taken in upgrade order (the database
 * replicas, in the inventory's order of `mysql.replicas`, then the primary, then every other host in inventory
 * order) and each gets the first slot that no host sharing one of its roles has. Slots are shared out evenly over
 * the period (one divisor for the whole inventory: a host in two roles fits both), so with the same start and
 * period, and a window no longer than the period over the slots, two windows of hosts sharing a role never overlap,
 * and every replica's window comes before the primary's. The loader checks both on the resolved windows
 * (upgradeWindowProblems), so an override that breaks them is an error, not a surprise.
 */

export const MINUTES_PER_DAY = 1440
/** A window shorter than this is no window: the loader refuses a period too short for the hosts sharing it. */
export const MIN_WINDOW_MINUTES = 10
/** The window when the inventory sets none: the period shared out, at most this. */
export const DEFAULT_MAX_WINDOW_MINUTES = 60

export interface UpgradeWindow {
  host: string
  /** Position among the slots (0 first); hosts sharing a role never share one. */
  slot: number
  /** Slots in the inventory. */
  slots: number
  /** Minute of the day (host clock) the window opens: the timers fire then. */
  start: number
  /** How long it lasts. */
  minutes: number
  /** Hosts sharing a role with it (their windows never overlap its own), in upgrade order. */
  peers: string[]
}

/** Hosts whose upgrades are automatic (the hardening item unattended_upgrades is on). */
export const upgradesOn = (host: Host): boolean => host.hardening.skip.unattended_upgrades === undefined

/** The order in which hosts take slots: database replicas, the primary, then the others (inventory order). */
export function upgradeOrder(inventory: Inventory): Host[] {
  const byName = new Map(inventory.hosts.map((h) => [h.name, h]))
  const first = [...(inventory.mysql?.replicas ?? []), ...(inventory.mysql?.primary ? [inventory.mysql.primary] : [])]
  const head = first.flatMap((n) => (byName.has(n) ? [byName.get(n)!] : []))
  return [...new Set([...head, ...inventory.hosts])]
}

export const shareRole = (a: Host, b: Host): boolean => a.name !== b.name && a.roles.some((r) => b.roles.includes(r))

export const minuteOfDay = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number)
  return (h! * 60 + m!) % MINUTES_PER_DAY
}

export const clock = (minute: number): string => {
  const m = ((minute % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
}

const memo = new WeakMap<Inventory, Map<string, UpgradeWindow>>()

/** Every host's window (hosts with automatic upgrades only), by name; computed once per inventory. */
export function upgradeWindows(inventory: Inventory): Map<string, UpgradeWindow> {
  let out = memo.get(inventory)
  if (!out) memo.set(inventory, (out = computeWindows(inventory)))
  return out
}

function computeWindows(inventory: Inventory): Map<string, UpgradeWindow> {
  const hosts = upgradeOrder(inventory).filter(upgradesOn)
  const slot = new Map<string, number>()
  /** Slots taken, per role. */
  const used = new Map<string, Set<number>>()
  const byRole = new Map<string, string[]>()
  for (const h of hosts) {
    let s = 0
    while (h.roles.some((r) => used.get(r)?.has(s))) s++
    slot.set(h.name, s)
    for (const r of h.roles) {
      used.set(r, (used.get(r) ?? new Set()).add(s))
      byRole.set(r, [...(byRole.get(r) ?? []), h.name])
    }
  }
  const slots = Math.max(0, ...slot.values()) + 1
  const out = new Map<string, UpgradeWindow>()
  for (const h of hosts) {
    const period = h.upgrades.periodHours * 60
    const step = Math.floor(period / slots)
    const s = slot.get(h.name)!
    out.set(h.name, {
      host: h.name,
      slot: s,
      slots,
      start: (minuteOfDay(h.upgrades.start) + s * step) % MINUTES_PER_DAY,
      minutes: h.upgrades.windowMinutes ?? Math.min(DEFAULT_MAX_WINDOW_MINUTES, step),
      peers: [...new Set(h.roles.flatMap((r) => byRole.get(r) ?? []))].filter((n) => n !== h.name),
    })
  }
  return out
}

/** Whether two daily windows overlap (on the 24-hour circle: a window may run past midnight). */
export function windowsOverlap(a: Pick<UpgradeWindow, 'start' | 'minutes'>, b: Pick<UpgradeWindow, 'start' | 'minutes'>): boolean {
  const d = (((b.start - a.start) % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY
  return d < a.minutes || MINUTES_PER_DAY - d < b.minutes
}

export const describeWindow = (w: Pick<UpgradeWindow, 'start' | 'minutes'>): string => `${clock(w.start)}-${clock(w.start + w.minutes)}`

/** What is wrong with the inventory's windows, per host (the loader turns these into inventory problems). */
export function upgradeWindowProblems(inventory: Inventory): Array<{host: string; message: string}> {
  const windows = upgradeWindows(inventory)
  const hosts = upgradeOrder(inventory).filter(upgradesOn)
  const problems: Array<{host: string; message: string}> = []
  for (const [i, h] of hosts.entries()) {
    const w = windows.get(h.name)!
    const step = Math.floor((h.upgrades.periodHours * 60) / w.slots)
    if (w.minutes < MIN_WINDOW_MINUTES) {
      problems.push({
        host: h.name,
        message: `upgrades: ${w.slots} upgrade slots in ${h.upgrades.periodHours} h leave ${step} minutes each (at least ${MIN_WINDOW_MINUTES}): set a longer upgrades.period_hours`,
      })
    }
    for (const o of hosts.slice(i + 1)) {
      if (!shareRole(h, o)) continue
      const v = windows.get(o.name)!
      const shared = h.roles.filter((r) => o.roles.includes(r)).join(', ')
      if (h.upgrades.start !== o.upgrades.start || h.upgrades.periodHours !== o.upgrades.periodHours) {
        problems.push({
          host: o.name,
          message: `upgrades: ${o.name} and ${h.name} share the role ${shared} but not upgrades.start and upgrades.period_hours (${o.upgrades.start}/${o.upgrades.periodHours} h, ${h.upgrades.start}/${h.upgrades.periodHours} h): set them per role or at the top level`,
        })
      } else if (windowsOverlap(w, v)) {
        problems.push({
          host: o.name,
          message: `upgrades: the windows of ${h.name} (${describeWindow(w)}) and ${o.name} (${describeWindow(v)}) overlap, and they share the role ${shared}: at most ${step} minutes each (upgrades.window_minutes), or a longer upgrades.period_hours`,
        })
      }
    }
  }
  return problems
}
