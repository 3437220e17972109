import {type HardeningItem, type Host, sshPort} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import type {Component, ComponentState, DesiredFile, LiveAction, ServiceSpec} from '../../engine/contract.js'
import {PENDING_REASON, emptyState, file} from '../../engine/contract.js'
import {applyHardening, reloadSshdGuarded} from './activate.js'
import {hardeningChecks} from './checks.js'
import {lynisState} from './lynis.js'
import {rkhunterState} from './rkhunter.js'
import {APT_SHOW_VERSIONS_GUARD} from './apt-show-versions.js'
import {type HardeningAction, describeHardening, hardeningFactsScript, hardeningUnits, parseHardeningFacts, planHardening} from './live.js'
import {SSHD_DROPIN, SSHD_GUARDED, SSHD_VALIDATE, renderSshd} from './sshd.js'
import {SYSCTL_FILE, renderSysctl} from './sysctl.js'
import {HOST_ONLY, NO_USB, hardeningSpec} from './spec.js'

export {type HardeningSpec, DEBIAN_LYNIS_TIMER, NEEDLESS_UNITS, hardeningSpec} from './spec.js'

export {SSHD_DROPIN, SSHD_GUARDED} from './sshd.js'
export {SYSCTL_FILE} from './sysctl.js'

export const FAIL2BAN_JAIL = '/etc/fail2ban/jail.d/foobar.local'
export const AUTO_UPGRADES = '/etc/apt/apt.conf.d/20auto-upgrades'

export const UNUSED_MODULES = ['dccp', 'sctp', 'rds', 'tipc', 'usb-storage', 'firewire-core']
export const USBGUARD_CONF = '/etc/usbguard/usbguard-daemon.conf'
export const USBGUARD_RULES = '/etc/usbguard/rules.conf'
export const PROFILE_FILE = '/etc/profile.d/60-foobar.sh'

// Not libpam-tmpdir: its per-user TMPDIR follows `sudo` into tools that drop privileges (mariadb-install-db
// --user=mysql fails on /tmp/user/0). Not needrestart: it restarts daemons behind foobar's back after apt runs.
export const AUDIT_PACKAGES = ['debsums', 'apt-show-versions', 'apt-listchanges', 'acct', 'sysstat', 'aide', 'rkhunter']

const ssh: ServiceSpec = {name: 'ssh', onChange: 'reload', health: 'sshd -t'}
const fail2ban: ServiceSpec = {name: 'fail2ban', onChange: 'reload', health: 'fail2ban-client status sshd >/dev/null'}
const usbguard: ServiceSpec = {name: 'usbguard', onChange: 'restart', health: 'usbguard list-rules >/dev/null', notInContainer: NO_USB}

/** Legal banner with the words auditors look for (Lynis BANN-7126/7130 want five or more). */
const BANNER =
  'Authorized access only. This system is private and monitored: activity is logged and recorded, and may be\nused as evidence. Unauthorized use is prohibited and subject to criminal and civil law.\n'

/**
 * A drop-in that keeps a unit from starting in a container, where it cannot work. Written before the packages: when
 * usbguard's postinst started it in the lab anyway, systemd lost track of its forked daemon and foobar's stop of it
 * waited out both stop timeouts (over 3 minutes of a first provision). Where the package started it before the
 * drop-in existed (an earlier foobar), the plan stops it there (HardeningSpec.hostOnly).
 */
const hostOnly = (item: HardeningItem): DesiredFile[] =>
  HOST_ONLY.filter((u) => u.item === item).map(({unit, why, notify}) =>
    file(
      `/etc/systemd/system/${unit}.d/60-foobar.conf`,
      `# Managed by foobar: not started in a container (${why}).\n[Unit]\nConditionVirtualization=!container\n`,
      {beforePackages: true, ...(notify ? {notify} : {})},
    ),
  )

export function renderHardening(host: Host, controlAddress?: string): ComponentState {
  const on = (item: HardeningItem) => host.hardening.skip[item] === undefined
  const s = emptyState()
  const common = {host: host.name}
  if (on('ssh')) {
    s.packages.push('openssh-server')
    s.files.push(file(SSHD_DROPIN, renderSshd(host), {mode: 0o600, notify: [SSHD_GUARDED], validate: SSHD_VALIDATE}))
    s.services.push(ssh)
  }
  if (on('sysctl')) s.files.push(file(SYSCTL_FILE, renderSysctl(host)))
  if (on('fail2ban')) {
    // The systemd backend needs the journal bindings (only a Recommends of fail2ban); bans go through nft.
    s.packages.push('fail2ban', 'python3-systemd', 'nftables')
    const ignore = host.firewall.allowControlAddress ? controlAddress : undefined
    s.files.push(
      file(FAIL2BAN_JAIL, renderTemplate('hardening/fail2ban.local', {...common, port: sshPort(host), controlAddress: ignore}), {
        notify: ['fail2ban'],
      }),
    )
    s.services.push(fail2ban)
  }
  if (on('policy')) {
    // A legal banner, no core dumps (they can hold secrets), and kernel modules a server never needs refused.
    // Password quality for the accounts that still have one (console, sudo passwords), and idle shells ended.
    s.packages.push('libpam-pwquality')
    s.files.push(
      file('/etc/issue', BANNER),
      file('/etc/issue.net', BANNER),
      file('/etc/login.defs', renderTemplate('hardening/login.defs', {})),
    )
    s.files.push(file('/etc/security/limits.d/60-foobar.conf', '# Managed by foobar: no core dumps.\n* hard core 0\n'))
    s.files.push(
      file(
        '/etc/systemd/coredump.conf.d/60-foobar.conf',
        '# Managed by foobar: no core dumps.\n[Coredump]\nStorage=none\nProcessSizeMax=0\n',
      ),
    )
    s.files.push(file(PROFILE_FILE, renderTemplate('hardening/profile', {timeout: host.hardening.shellTimeout})))
    s.files.push(
      file(
        '/etc/modprobe.d/60-foobar.conf',
        `# Managed by foobar: protocols and storage drivers a server does not need.\n${UNUSED_MODULES.map((m) => `install ${m} /bin/false`).join('\n')}\n`,
      ),
    )
  }
  if (on('audit_tools')) {
    // What auditors look for (Lynis PKGS-7370/7394, ACCT-9622/9626, FINT-4350, HRDN-7230).
    s.packages.push(...AUDIT_PACKAGES)
    s.files.push(...hostOnly('audit_tools'))
    // rkhunter's file properties database: built after the package transaction, not inside it.
    const rkhunter = rkhunterState()
    s.files.push(...rkhunter.files)
    // apt-show-versions' cache: built at its first use, not inside the package transaction.
    s.installGuards = [...rkhunter.guards, APT_SHOW_VERSIONS_GUARD]
    // Lynis on the host's own schedule (after every change by foobar, and daily): verify reads its latest report.
    const lynis = lynisState()
    s.packages.push('lynis')
    s.files.push(...lynis.files)
    s.services.push(...lynis.services)
  }
  if (on('usb')) {
    // USBGuard: hubs and keyboards/mice (a console keeps working), every other device (storage, network) blocked.
    s.packages.push('usbguard')
    s.files.push(file(USBGUARD_CONF, renderTemplate('hardening/usbguard-daemon.conf', common), {mode: 0o600, notify: ['usbguard']}))
    s.files.push(file(USBGUARD_RULES, renderTemplate('hardening/usbguard-rules.conf', common), {mode: 0o600, notify: ['usbguard']}))
    s.files.push(...hostOnly('usb'))
    s.services.push(usbguard)
  }
  if (on('unattended_upgrades')) {
    s.packages.push('unattended-upgrades')
    s.files.push(file(AUTO_UPGRADES, renderTemplate('hardening/20auto-upgrades', common)))
  }
  return s
}

/**
 * The planned hardening steps as live actions, one each (one line each in the plan). The modes next to each other
 * are applied together, in one round trip (issue 20: seven round trips on a first provision before): the first of
 * them applies the whole run of modes, the others find it done (or its failure, which ends the host's apply anyway).
 */
function toActions(actions: HardeningAction[], revertAfter: number): LiveAction[] {
  const out: LiveAction[] = []
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i]!
    if (a.kind !== 'mode') {
      out.push(toAction(a, revertAfter))
      continue
    }
    const run: HardeningAction[] = [a]
    while (actions[i + 1]?.kind === 'mode') run.push(actions[++i]!)
    let applied: Promise<void> | undefined
    for (const m of run) out.push({...toAction(m, revertAfter), apply: (h) => (applied ??= applyHardening(h.runner, run, h.step))})
  }
  return out
}

/** A planned hardening step as a live action: plain steps on the existing connection, sshd's reload guarded. */
function toAction(a: HardeningAction, revertAfter: number): LiveAction {
  const base = {kind: a.kind, summary: describeHardening(a), data: {...a}}
  if (a.kind === 'sshd') {
    return {
      ...base,
      guarded: true,
      pending: SSHD_GUARDED,
      apply: (h) =>
        reloadSshdGuarded(
          h.runner,
          revertAfter,
          h.restoreScript(h.written.filter((p) => p.startsWith('/etc/ssh/'))),
          h.freshConnection,
          h.step,
        ),
    }
  }
  return {...base, apply: (h) => applyHardening(h.runner, [a], h.step)}
}

/**
 * Host hardening: sshd, kernel settings, fail2ban, policy, audit tools, USBGuard, unattended upgrades; modes,
 * needless units and kernel settings compared with the live host. After the services it looks at, so their
 * needless siblings are there to be seen.
 */
export const hardening: Component = {
  name: 'hardening',
  after: ['nginx', 'haproxy', 'mysql', 'exporters', 'logs', 'monitoring-server'],
  appliesTo: () => true,
  desired: ({host, controlAddress}) => renderHardening(host, controlAddress),
  live: {
    prepare: () => ({
      script: ({host}) => hardeningFactsScript(hardeningSpec(host)),
      units: ({host}) => hardeningUnits(hardeningSpec(host)),
      plan: (ctx, lines) => {
        const dropIn = ctx.notified.has(SSHD_GUARDED) ? 'config changed' : ctx.pending.includes(SSHD_GUARDED) ? PENDING_REASON : undefined
        return toActions(
          planHardening(hardeningSpec(ctx.host), parseHardeningFacts(lines), ctx.virt, dropIn),
          ctx.host.hardening.revertAfter,
        )
      },
    }),
  },
  checks: (ctx) => hardeningChecks(ctx),
}
