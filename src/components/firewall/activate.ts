import {Failure} from '../../util/errors.js'
import type {Host} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {type RevertGuard, armRevert, assertNoPendingRevert, confirmOrRevert, revertNow} from '../guard.js'
import {APPLIED_DIR} from './live.js'
import {SYSCTL_FILE} from '../hardening/sysctl.js'

export const REVERT_UNIT = 'foobar-firewall-revert'
/** Files the activation depends on; the revert puts their previous versions back too. */
function ruleFiles(host: Host, files: string[]): string[] {
  return files.filter((f) => (host.firewall.backend === 'ufw' ? f.includes('/firewall/') : f.startsWith('/etc/iptables/')))
}

/** Saves the live firewall and writes the script that restores it. */
function saveScript(host: Host, files: string[], restore: (paths: string[]) => string): string {
  const d = APPLIED_DIR
  const revert =
    host.firewall.backend === 'ufw'
      ? [
          `ufw --force disable >/dev/null 2>&1 || true`,
          `if [ -f ${d}/prev/ufw.tar ]; then rm -rf /etc/ufw && tar -C /etc -xf ${d}/prev/ufw.tar; fi`,
          `if [ "$(cat ${d}/prev/state)" = active ]; then ufw --force enable; fi`,
          // ufw's enable loads its own sysctl.conf (log_martians off): the hardening values go back on, as after activation.
          `if [ -f ${SYSCTL_FILE} ]; then sysctl -q -p ${SYSCTL_FILE} >/dev/null 2>&1 || true; fi`,
        ]
      : [`iptables-restore < ${d}/prev/v4`, `ip6tables-restore < ${d}/prev/v6`]
  const open = `*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n`
  const save =
    host.firewall.backend === 'ufw'
      ? [
          `if [ -d /etc/ufw ]; then tar -C /etc -cf ${d}/prev/ufw.tar ufw; fi`,
          `if ufw status 2>/dev/null | grep -q '^Status: active'; then echo active; else echo inactive; fi > ${d}/prev/state`,
        ]
      : [
          // An empty ruleset saves as nothing: record "all open" explicitly so the revert really reverts.
          `iptables-save -t filter > ${d}/prev/v4 2>/dev/null || true; [ -s ${d}/prev/v4 ] || printf '${open}' > ${d}/prev/v4`,
          `ip6tables-save -t filter > ${d}/prev/v6 2>/dev/null || true; [ -s ${d}/prev/v6 ] || printf '${open}' > ${d}/prev/v6`,
        ]
  return [
    `mkdir -p ${d} && chmod 700 ${d} && rm -rf ${d}/prev && mkdir ${d}/prev`,
    ...save,
    `cat > ${d}/revert.sh <<'FOOBAR_EOF'`,
    '#!/bin/sh',
    '# Written by foobar: puts back the firewall as it was before a change that was not confirmed in time.',
    ...revert,
    restore(ruleFiles(host, files)),
    `logger -t foobar 'firewall change not confirmed: previous rules restored' || true`,
    'FOOBAR_EOF',
  ].join('\n')
}

function activateScript(host: Host): string {
  if (host.firewall.backend === 'ufw') {
    return [
      'ufw --force reset >/dev/null',
      // reset keeps timestamped copies of the old rules; the saved state above is the one that matters.
      'rm -f /etc/ufw/*.rules.[0-9]*_[0-9]*',
      // Each line of the rendered file is a ufw command (values were validated; the file is foobar's own).
      `grep -v -e '^#' -e '^$' /etc/foobar/firewall/ufw.rules | sed 's/^/ufw /' | sh -e >/dev/null`,
      'ufw --force enable >/dev/null',
      // ufw's own /etc/ufw/sysctl.conf turns log_martians off on every enable: put the hardening values back.
      `if [ -f ${SYSCTL_FILE} ]; then sysctl -q -p ${SYSCTL_FILE} >/dev/null 2>&1 || true; fi`,
    ].join('\n')
  }
  return [
    'iptables-restore < /etc/iptables/rules.v4',
    'ip6tables-restore < /etc/iptables/rules.v6',
    // Loaded again at boot from the same files: rules lost on reboot would mean a firewall that fails open.
    'systemctl enable netfilter-persistent >/dev/null 2>&1',
  ].join('\n')
}

/**
 * Activates the rendered rules without ever locking the operator out: save the live rules, schedule an automatic
 * revert on the host itself, activate, then prove a *fresh* SSH connection works before cancelling the revert.
 */
export async function activateFirewall(
  conn: Runner,
  host: Host,
  changedFiles: string[],
  restore: (paths: string[]) => string,
  freshConnection: () => Promise<void>,
  step: (s: string) => void = () => {},
): Promise<void> {
  const guard: RevertGuard = {unit: REVERT_UNIT, script: `${APPLIED_DIR}/revert.sh`, seconds: host.firewall.revertAfter, what: 'firewall'}
  await assertNoPendingRevert(conn, guard)
  step('saving the live firewall')
  await conn.run(saveScript(host, changedFiles, restore))
  await armRevert(conn, guard)
  step(`activating (${host.firewall.backend}); automatic revert in ${host.firewall.revertAfter}s unless confirmed`)
  const act = await conn.run(`set -e\n${activateScript(host)}`, {check: false})
  if (act.code !== 0) {
    await revertNow(conn, guard)
    throw new Failure(`${host.name}: activating the firewall failed, previous rules restored: ${act.stderr.trim().split('\n').pop()}`)
  }
  step('checking a fresh SSH connection')
  await confirmOrRevert(conn, guard, freshConnection)
  step('firewall confirmed')
}
