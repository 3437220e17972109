import type {Check, CheckContext, Component, ComponentState, LiveAction, ServiceSpec} from '../../engine/contract.js'
import {PENDING_REASON, emptyState, file} from '../../engine/contract.js'
import {type Host, type Inventory, type UpgradeWindow, clock, describeWindow, upgradeWindows, upgradesOn} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {hostCidr} from '../../util/address.js'
import {shq} from '../../util/shell.js'
import {PORTS} from '../ports.js'

/*
 * Staggered automatic upgrades (issue 22). unattended-upgrades (the hardening item) runs from apt's own timers;
 * this component gives each host its own window (src/inventory/upgrade-windows.ts), the origins and reboot policy
 * of the inventory, and the gate around each upgrade: a host whose upgrade broke one of its services publishes
 * that, and the hosts sharing a role with it hold those versions when their own window comes.
 */

export const UU_CONF = '/etc/apt/apt.conf.d/52foobar-unattended-upgrades'
export const TIMERS = ['apt-daily.timer', 'apt-daily-upgrade.timer'] as const
export const timerDropIn = (timer: string) => `/etc/systemd/system/${timer}.d/60-foobar.conf`
export const UPGRADE_SERVICE_DROPIN = '/etc/systemd/system/apt-daily-upgrade.service.d/60-foobar.conf'
export const GATE = '/usr/local/sbin/foobar-upgrade-gate'
export const STATUS_SOCKET = 'foobar-upgrade-status.socket'
export const STATUS_FILE = '/var/lib/foobar-upgrade/status'
export const HOLD_FILE = '/etc/apt/preferences.d/foobar-upgrade-hold'
export const BOOT_SERVICE = 'foobar-upgrade-boot.service'
/** The live step's pseudo-service: the timers are (re)started when their drop-ins change. */
const TIMERS_NOTIFY = 'foobar-upgrade-timers'

/** Hosts that share a role with this one and upgrade automatically (they read its status, it reads theirs). */
function peers(inventory: Inventory, host: Host, w: UpgradeWindow | undefined): Host[] {
  const names = new Set(w?.peers ?? [])
  return inventory.hosts.filter((h) => names.has(h.name))
}

const listen = (host: Host) => (host.family === 6 ? `[${host.address}]:${PORTS.upgradeStatus}` : `${host.address}:${PORTS.upgradeStatus}`)

/** The health() body of the gate: each service foobar runs on the host, active and passing its own check. */
export function healthLines(services: ServiceSpec[]): string {
  const seen = new Set<string>()
  const lines: string[] = []
  for (const s of services) {
    if (seen.has(s.name)) continue
    seen.add(s.name)
    const unit = shq(s.name)
    const check = `systemctl is-active --quiet ${unit}${s.health ? ` && { ${s.health}\n} >/dev/null 2>&1` : ''}`
    // A unit conditioned out in a container (the host machine's hardware) is not this host's to judge there.
    const guard = s.notInContainer ? 'systemd-detect-virt -cq || ' : ''
    lines.push(`  ${guard}{ ${check}\n  } || failed+=(${unit})`)
  }
  return lines.join('\n')
}

export function renderGate(inventory: Inventory, host: Host, w: UpgradeWindow | undefined, services: ServiceSpec[]): string {
  const ps = peers(inventory, host, w)
  const text = renderTemplate('upgrades/gate', {
    host: host.name,
    port: String(PORTS.upgradeStatus),
    reboot: host.upgrades.reboot,
    peerNames: ps.map((p) => p.name).join(', ') || 'none',
    peerList: ps.map((p) => `${p.name}=${p.address}`).join(' '),
  })
  // The health checks are foobar's own shell snippets (the components' ServiceSpec.health), not inventory values.
  return text.replace('# @@HEALTH@@', healthLines(services.filter((s) => !s.name.startsWith('foobar-upgrade'))))
}

export function renderUpgrades(inventory: Inventory, host: Host, services: ServiceSpec[] = []): ComponentState {
  const s = emptyState()
  const w = upgradeWindows(inventory).get(host.name)
  const common = {host: host.name}
  s.packages.push('unattended-upgrades')
  const origins = Object.fromEntries(host.upgrades.origins.map((o) => [o, true]))
  s.files.push(
    file(UU_CONF, renderTemplate('upgrades/unattended-upgrades', {...common, security: false, updates: false, stable: false, ...origins})),
  )
  if (w) {
    const view = {
      ...common,
      window: describeWindow(w),
      slot: String(w.slot + 1),
      slots: String(w.slots),
      peers: w.peers.join(', ') || 'none',
      time: clock(w.start),
    }
    for (const t of TIMERS) s.files.push(file(timerDropIn(t), renderTemplate('upgrades/timer', view), {notify: [TIMERS_NOTIFY]}))
  }
  s.files.push(file(UPGRADE_SERVICE_DROPIN, renderTemplate('upgrades/upgrade-service', common)))
  s.files.push(file(GATE, renderGate(inventory, host, w, services), {mode: 0o755}))
  s.files.push(file(`/etc/systemd/system/${BOOT_SERVICE}`, renderTemplate('upgrades/boot.service', common)))
  if (peers(inventory, host, w).length) {
    s.files.push(
      file(`/etc/systemd/system/${STATUS_SOCKET}`, renderTemplate('upgrades/status.socket', {...common, listen: listen(host)}), {
        notify: [STATUS_SOCKET],
      }),
      file('/etc/systemd/system/foobar-upgrade-status@.service', renderTemplate('upgrades/status@.service', common)),
    )
    s.services.push({name: STATUS_SOCKET, onChange: 'restart'})
  } else {
    s.absent.push(`/etc/systemd/system/${STATUS_SOCKET}`, '/etc/systemd/system/foobar-upgrade-status@.service')
  }
  return s
}

/** Units the live step keeps enabled (the boot check only enabled: it runs when a reboot is owed a check). */
const LIVE_UNITS = [...TIMERS, BOOT_SERVICE]

/** The units the live step reads: their `unit` lines come with the facts (LivePlanner.units), no script of its own. */
export const upgradesUnits = (): string[] => [...LIVE_UNITS]

/** Pure: the live step from the units' state and whether the timers' drop-ins change (or an earlier run owes it). */
export function planUpgradeUnits(lines: string[], timersChanged: string | undefined): LiveAction[] {
  const units: Record<string, {enabled: string; active: string}> = {}
  for (const line of lines) {
    const [kind, name, enabled, active] = line.split(' ')
    if (kind === 'unit' && name) units[name] = {enabled: enabled ?? 'none', active: active ?? ''}
  }
  const off = TIMERS.filter((t) => units[t]?.enabled !== 'enabled' || units[t]?.active !== 'active')
  const actions: LiveAction[] = []
  if (off.length || timersChanged) {
    const why = off.length
      ? off.map((t) => `${t} ${units[t]?.enabled ?? 'none'}, ${units[t]?.active || 'inactive'}`).join('; ')
      : timersChanged!
    actions.push({
      kind: 'timers',
      summary: `unmask, enable and restart ${TIMERS.join(' and ')} in this host's window (${why})`,
      data: {timers: [...TIMERS]},
      pending: TIMERS_NOTIFY,
      apply: async (h) => {
        h.step('starting the upgrade timers in their window')
        const all = TIMERS.map(shq).join(' ')
        // The lab's image (and some images) mask them; foobar's hardening wants them.
        await h.runner.run(`systemctl unmask ${all} >/dev/null 2>&1; systemctl enable --no-reload ${all} 2>&1 && systemctl restart ${all}`)
      },
    })
  }
  if (units[BOOT_SERVICE]?.enabled !== 'enabled') {
    actions.push({
      kind: 'enable',
      summary: `enable ${BOOT_SERVICE} (the health check owed after a reboot an upgrade asked for)`,
      data: {unit: BOOT_SERVICE},
      apply: async (h) => {
        await h.runner.run(`systemctl enable --no-reload ${shq(BOOT_SERVICE)} 2>&1`)
      },
    })
  }
  return actions
}

/** Pure: the status file a host publishes -> its state. */
export function parseStatus(text: string): {
  state: 'ok' | 'broken' | 'none'
  time?: number
  failed?: string
  packages: Array<{name: string; from: string; to: string}>
} {
  const lines = text.split('\n')
  if (lines[0] !== 'foobar-upgrade-status 1') return {state: 'none', packages: []}
  const out: ReturnType<typeof parseStatus> = {state: 'none', packages: []}
  for (const l of lines.slice(1)) {
    const [k, ...v] = l.split(' ')
    if (k === 'state' && (v[0] === 'ok' || v[0] === 'broken')) out.state = v[0]
    else if (k === 'time' && /^\d+$/.test(v[0] ?? '')) out.time = Number(v[0])
    else if (k === 'failed') out.failed = v.join(' ')
    else if (k === 'pkg' && v.length === 3) out.packages.push({name: v[0]!, from: v[1]!, to: v[2]!})
  }
  return out
}

/** Pure: the apt preferences the gate wrote -> the versions held (package, version). */
export function parseHold(text: string): Array<{name: string; version: string}> {
  const out: Array<{name: string; version: string}> = []
  let name: string | undefined
  for (const l of text.split('\n')) {
    const p = /^Package: (\S+)$/.exec(l)
    const v = /^Pin: version (\S+)$/.exec(l)
    if (p) name = p[1]
    else if (v && name) out.push({name, version: v[1]!})
  }
  return out
}

const ago = (s: number) => {
  const d = Math.max(0, Math.round(Date.now() / 1000 - s))
  return d < 3600 ? `${Math.round(d / 60)} min ago` : d < 86400 ? `${Math.round(d / 3600)} h ago` : `${Math.round(d / 86400)} d ago`
}

function upgradeChecks(ctx: CheckContext): Check[] {
  const w = upgradeWindows(ctx.inventory).get(ctx.host.name)
  return [
    {
      name: 'upgrade window',
      run: async () => {
        const r = await ctx.runner.run(
          TIMERS.map(
            (t) =>
              `echo "${t} $(systemctl show -p ActiveState --value ${t}) $(systemctl show -p TimersCalendar --value ${t} | grep -o 'OnCalendar=[^;]*' | head -n1)"`,
          ).join('; '),
          {check: false},
        )
        if (!w) return {ok: true, skipped: true, detail: 'no window'}
        const want = `OnCalendar=*-*-* ${clock(w.start)}:00`
        const wrong = r.stdout
          .trim()
          .split('\n')
          .filter((l) => {
            const [, state, ...cal] = l.split(' ')
            return state !== 'active' || cal.join(' ').trim() !== want
          })
        const detail = `${describeWindow(w)}, slot ${w.slot + 1} of ${w.slots}${w.peers.length ? `; shares a role with ${w.peers.join(', ')}` : ''}`
        return wrong.length ? {ok: false, detail: `${wrong.join('; ')} (want active, ${want}); window ${detail}`} : {ok: true, detail}
      },
    },
    {
      name: 'upgrade status',
      run: async () => {
        const r = await ctx.runner.run(`cat ${STATUS_FILE} 2>/dev/null; echo @@hold; cat ${HOLD_FILE} 2>/dev/null`, {check: false})
        const [status = '', hold = ''] = r.stdout.split('@@hold\n')
        const st = parseStatus(status)
        const held = parseHold(hold)
        const holding = held.length ? `; holding ${held.map((h) => `${h.name} ${h.version}`).join(', ')} (broke a host sharing a role)` : ''
        if (st.state === 'broken') {
          return {
            ok: false,
            final: true,
            detail: `the automatic upgrade${st.time ? ` ${ago(st.time)}` : ''} of ${st.packages.map((p) => `${p.name} ${p.from} -> ${p.to}`).join(', ') || '(unknown)'} broke ${st.failed || 'a service'}: the hosts sharing a role hold these versions; once fixed, \`sudo ${GATE} check\` clears it${holding}`,
          }
        }
        return {
          ok: true,
          detail: `${st.state === 'ok' ? `last upgrade healthy${st.time ? ` (${ago(st.time)})` : ''}` : 'no automatic upgrade yet'}${holding}`,
        }
      },
    },
  ]
}

/** Staggered automatic upgrades, their gate and its status endpoint; after every component whose services it checks. */
export const upgrades: Component = {
  name: 'upgrades',
  after: [
    'hardening',
    'app',
    'nginx',
    'haproxy',
    'keepalived',
    'mysql',
    'replication',
    'app-db',
    'db-endpoint',
    'exporters',
    'logs',
    'monitoring-server',
  ],
  appliesTo: (host) => upgradesOn(host),
  desired: ({inventory, host, services}) => renderUpgrades(inventory, host, services),
  ports: ({inventory, host}) => {
    const ps = peers(inventory, host, upgradeWindows(inventory).get(host.name))
    return ps.length
      ? [{port: PORTS.upgradeStatus, proto: 'tcp', from: ps.map(hostCidr), comment: 'upgrade status for hosts sharing a role'}]
      : []
  },
  live: {
    prepare: () => ({
      script: () => '',
      units: () => upgradesUnits(),
      plan: (ctx, lines) =>
        planUpgradeUnits(
          lines,
          ctx.notified.has(TIMERS_NOTIFY) ? 'window changed' : ctx.pending.includes(TIMERS_NOTIFY) ? PENDING_REASON : undefined,
        ),
    }),
  },
  checks: (ctx) => upgradeChecks(ctx),
}
