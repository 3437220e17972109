import type {Host} from '../../inventory/index.js'
import {isContainer} from '../../util/virt.js'
import {renderTemplate} from '../../render/templates.js'

export const SYSCTL_FILE = '/etc/sysctl.d/60-foobar-hardening.conf'

/** REFERENCE.md's settings (CIS Debian, dev-sec) and the ones Lynis' KRNL-6000 also expects. */
export const SYSCTL: Record<string, string> = {
  'fs.protected_fifos': '2',
  'fs.protected_hardlinks': '1',
  'fs.protected_regular': '2',
  'fs.protected_symlinks': '1',
  'fs.suid_dumpable': '0',
  'kernel.dmesg_restrict': '1',
  'kernel.kptr_restrict': '2',
  'kernel.randomize_va_space': '2',
  'kernel.sysrq': '0',
  'kernel.yama.ptrace_scope': '1',
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.conf.all.log_martians': '1',
  'net.ipv4.conf.all.rp_filter': '1',
  'net.ipv4.conf.all.secure_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.default.accept_redirects': '0',
  'net.ipv4.conf.default.accept_source_route': '0',
  'net.ipv4.conf.default.log_martians': '1',
  'net.ipv4.conf.default.rp_filter': '1',
  'net.ipv4.conf.default.secure_redirects': '0',
  'net.ipv4.conf.default.send_redirects': '0',
  'net.ipv4.icmp_echo_ignore_broadcasts': '1',
  'net.ipv4.icmp_ignore_bogus_error_responses': '1',
  'net.ipv4.tcp_syncookies': '1',
  'net.ipv6.conf.all.accept_redirects': '0',
  'net.ipv6.conf.all.accept_source_route': '0',
  'net.ipv6.conf.default.accept_redirects': '0',
  'net.ipv6.conf.default.accept_source_route': '0',
}

export function renderSysctl(host: Host): string {
  return renderTemplate('hardening/sysctl.conf', {host: host.name, keys: Object.entries(SYSCTL).map(([name, value]) => ({name, value}))})
}

export const CONTAINER_REASON = 'in a container: only net.* can be set (the rest of /proc/sys is read-only)'

/**
 * Why a key cannot be set on this host, or undefined when it can. `live` is the host's current value (undefined:
 * the kernel has no such key). In a container (systemd-detect-virt --container) only the network namespace's own
 * keys are writable.
 */
export function sysctlSkipReason(key: string, virt: string, live: string | undefined): string | undefined {
  if (isContainer(virt) && !key.startsWith('net.')) return CONTAINER_REASON
  if (live === undefined) return 'not in this kernel'
  return undefined
}
