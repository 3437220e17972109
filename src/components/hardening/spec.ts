import type {HardeningItem, Host} from '../../inventory/index.js'
import {SYSCTL} from './sysctl.js'

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
  /** rkhunter is installed by foobar: its file properties database is built after the package transaction (rkhunter.ts). */
  rkhunter: boolean
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
  'avahi-daemon.socket',
  'avahi-daemon.service',
  'bluetooth.service',
  'cups.socket',
  'cups.service',
  'cups-browsed.service',
  'rpcbind.socket',
  'rpcbind.service',
]

/**
 * Debian's lynis package enables a timer of its own (`lynis audit system --cronjob`, daily): beside foobar's, every host
 * ran a full audit twice a day (~100 s of a lab host's CPU each, niced only within its own session). foobar's run (lynis.ts)
 * replaces it, so hardening stops and disables it where foobar's is set up (a disabled unit stays so on upgrades).
 */
export const DEBIAN_LYNIS_TIMER = 'lynis.timer'

export const NO_USB = 'in a container the host machine owns the USB devices'

/** Units that cannot work in a container, by the item that installs them: one list for the drop-ins and the plan. */
export const HOST_ONLY: Array<{item: HardeningItem; unit: string; why: string; notify?: string[]}> = [
  {item: 'usb', unit: 'usbguard.service', why: NO_USB, notify: ['usbguard']},
  {item: 'usb', unit: 'usbguard-dbus.service', why: NO_USB},
  {item: 'audit_tools', unit: 'acct.service', why: 'process accounting needs CAP_SYS_PACCT, which a container does not have'},
]

export function hardeningSpec(host: Host): HardeningSpec {
  const on = (item: HardeningItem) => host.hardening.skip[item] === undefined
  return {
    sysctl: on('sysctl') ? SYSCTL : {},
    modes: on('permissions') ? MODES : [],
    // Debian's daily Lynis timer where foobar's own runs.
    disable: [...(on('services') ? NEEDLESS_UNITS : []), ...(on('audit_tools') ? [DEBIAN_LYNIS_TIMER] : [])],
    hostOnly: HOST_ONLY.filter((u) => on(u.item)).map((u) => u.unit),
    skipped: host.hardening.skip,
    rkhunter: on('audit_tools'),
  }
}
