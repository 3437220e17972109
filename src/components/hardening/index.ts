import type {HardeningItem, Host} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {type Component, type ComponentState, type DesiredFile, type ServiceSpec, emptyState, file} from '../types.js'
import {SSHD_DROPIN, SSHD_GUARDED, SSHD_VALIDATE, renderSshd} from './sshd.js'
import {SYSCTL, SYSCTL_FILE, renderSysctl} from './sysctl.js'

export {SSHD_DROPIN, SSHD_GUARDED} from './sshd.js'
export {SYSCTL_FILE} from './sysctl.js'

export const FAIL2BAN_JAIL = '/etc/fail2ban/jail.d/foobar.local'
export const AUTO_UPGRADES = '/etc/apt/apt.conf.d/20auto-upgrades'

/** What the plan compares with the live host beyond files: modes, kernel settings, units to switch off. */
export interface HardeningSpec {
  sysctl: Record<string, string>
  /** Existing paths whose mode is tightened (owner root:root); absent ones are left absent. */
  modes: Array<{path: string; mode: number}>
  /** Units stopped and disabled where they exist. */
  disable: string[]
  /** Units that cannot work in a container: there, stopped and their failed state cleared (a drop-in keeps them off). */
  hostOnly: string[]
  /** Items switched off in the inventory, with the reason (verify reports them as skipped). */
  skipped: Partial<Record<HardeningItem, string>>
}

/** cron runs as root what these hold (CIS Debian 5.1); sshd's config names who may log in. */
const MODES: Array<{path: string; mode: number}> = [
  {path: '/etc/crontab', mode: 0o600},
  ...['d', 'daily', 'hourly', 'weekly', 'monthly'].map((d) => ({path: `/etc/cron.${d}`, mode: 0o700})),
  {path: '/etc/ssh/sshd_config', mode: 0o600},
  {path: '/etc/ssh/sshd_config.d', mode: 0o700},
  // The assembler (binutils, a dependency of rkhunter) for root only: no building exploits as another user.
  ...['x86_64', 'aarch64'].map((arch) => ({path: `/usr/bin/${arch}-linux-gnu-as`, mode: 0o750})),
]

/**
 * Listening services a web, load-balancer or database server has no use for (CIS Debian 2.2): the portmapper,
 * mDNS, printing and Bluetooth. Their sockets too, or the first connection would start them again.
 */
export const NEEDLESS_UNITS = [
  'avahi-daemon.socket', 'avahi-daemon.service', 'bluetooth.service',
  'cups.socket', 'cups.service', 'cups-browsed.service', 'rpcbind.socket', 'rpcbind.service',
]

export const UNUSED_MODULES = ['dccp', 'sctp', 'rds', 'tipc', 'usb-storage', 'firewire-core']
export const USBGUARD_CONF = '/etc/usbguard/usbguard-daemon.conf'
export const USBGUARD_RULES = '/etc/usbguard/rules.conf'
export const PROFILE_FILE = '/etc/profile.d/60-foobar.sh'

// Not libpam-tmpdir: its per-user TMPDIR follows `sudo` into tools that drop privileges (mariadb-install-db
// --user=mysql fails on /tmp/user/0). Not needrestart: it restarts daemons behind foobar's back after apt runs.
export const AUDIT_PACKAGES = ['debsums', 'apt-show-versions', 'apt-listchanges', 'acct', 'sysstat', 'aide', 'rkhunter']

export function hardeningSpec(host: Host): HardeningSpec {
  const on = (item: HardeningItem) => host.hardening.skip[item] === undefined
  return {
    sysctl: on('sysctl') ? SYSCTL : {},
    modes: on('permissions') ? MODES : [],
    disable: on('services') ? NEEDLESS_UNITS : [],
    hostOnly: HOST_ONLY.filter((u) => on(u.item)).map((u) => u.unit),
    skipped: host.hardening.skip,
  }
}

const ssh: ServiceSpec = {name: 'ssh', onChange: 'reload', health: 'sshd -t'}
const fail2ban: ServiceSpec = {name: 'fail2ban', onChange: 'reload', health: 'fail2ban-client status sshd >/dev/null'}
const NO_USB = 'in a container the host machine owns the USB devices'
const usbguard: ServiceSpec = {name: 'usbguard', onChange: 'restart', health: 'usbguard list-rules >/dev/null', notInContainer: NO_USB}

/** Units that cannot work in a container, by the item that installs them: one list for the drop-ins and the plan. */
const HOST_ONLY: Array<{item: HardeningItem; unit: string; why: string; notify?: string[]}> = [
  {item: 'usb', unit: 'usbguard.service', why: NO_USB, notify: [usbguard.name]},
  {item: 'usb', unit: 'usbguard-dbus.service', why: NO_USB},
  {item: 'audit_tools', unit: 'acct.service', why: 'process accounting needs CAP_SYS_PACCT, which a container does not have'},
]

/** Legal banner with the words auditors look for (Lynis BANN-7126/7130 want five or more). */
const BANNER = 'Authorized access only. This system is private and monitored: activity is logged and recorded, and may be\nused as evidence. Unauthorized use is prohibited and subject to criminal and civil law.\n'

/**
 * A drop-in that keeps a unit from starting in a container, where it cannot work. Its package may have started
 * it (failing, or still running) before the drop-in existed: the plan stops it there (HardeningSpec.hostOnly).
 */
const hostOnly = (item: HardeningItem): DesiredFile[] =>
  HOST_ONLY.filter((u) => u.item === item).map(({unit, why, notify}) =>
    file(`/etc/systemd/system/${unit}.d/60-foobar.conf`, `# Managed by foobar: not started in a container (${why}).\n[Unit]\nConditionVirtualization=!container\n`, notify ? {notify} : {}),
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
    s.files.push(file(FAIL2BAN_JAIL, renderTemplate('hardening/fail2ban.local', {...common, port: host.ssh.port, controlAddress: ignore}), {notify: ['fail2ban']}))
    s.services.push(fail2ban)
  }
  if (on('policy')) {
    // A legal banner, no core dumps (they can hold secrets), and kernel modules a server never needs refused.
    // Password quality for the accounts that still have one (console, sudo passwords), and idle shells ended.
    s.packages.push('libpam-pwquality')
    s.files.push(file('/etc/issue', BANNER), file('/etc/issue.net', BANNER), file('/etc/login.defs', renderTemplate('hardening/login.defs', {})))
    s.files.push(file('/etc/security/limits.d/60-foobar.conf', '# Managed by foobar: no core dumps.\n* hard core 0\n'))
    s.files.push(file('/etc/systemd/coredump.conf.d/60-foobar.conf', '# Managed by foobar: no core dumps.\n[Coredump]\nStorage=none\nProcessSizeMax=0\n'))
    s.files.push(file(PROFILE_FILE, renderTemplate('hardening/profile', {timeout: host.hardening.shellTimeout})))
    s.files.push(file('/etc/modprobe.d/60-foobar.conf', `# Managed by foobar: protocols and storage drivers a server does not need.\n${UNUSED_MODULES.map((m) => `install ${m} /bin/false`).join('\n')}\n`))
  }
  if (on('audit_tools')) {
    // What auditors look for (Lynis PKGS-7370/7394, ACCT-9622/9626, FINT-4350, HRDN-7230).
    s.packages.push(...AUDIT_PACKAGES)
    s.files.push(...hostOnly('audit_tools'))
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

/** Last in the component order: services are installed before their needless siblings are looked at. */
export const hardening: Component = {
  name: 'hardening',
  appliesTo: () => true,
  desired: ({host, controlAddress}) => renderHardening(host, controlAddress),
}
