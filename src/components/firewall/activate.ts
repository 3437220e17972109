import {Failure} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import type {Host} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {type RevertGuard, armRevert, assertNoPendingRevert, confirmOrRevert, revertNow} from '../guard.js'
import {APPLIED_DIR, UFW_RULES_FILE} from './live.js'
import {SYSCTL_FILE} from '../hardening/sysctl.js'

export const REVERT_UNIT = 'foobar-firewall-revert'
/**
 * Files the activation depends on, whichever the backend: the revert puts their previous versions back too (a switch
 * from iptables to ufw removes /etc/iptables/rules.v4, which the revert must bring back with the old rules).
 */
function ruleFiles(files: string[]): string[] {
  return files.filter((f) => f.startsWith('/etc/foobar/firewall/') || f.startsWith('/etc/iptables/'))
}

/** An all-open filter table, for a host where iptables-save prints nothing (no rules were ever loaded). */
const OPEN = `*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n`

/**
 * Saves the live firewall and writes the script that restores it. Both backends save the same snapshot: the filter
 * tables as iptables-save prints them (ufw's chains included when it is active) and ufw's configuration. The revert
 * restores exactly that, so a failed switch between backends goes back to the other backend's rules, not to an open
 * host. (ufw and netfilter-persistent exclude each other as packages: the package switch itself is not reverted.)
 */
function saveScript(files: string[], restore: (paths: string[]) => string): string {
  const d = APPLIED_DIR
  const save = [
    `if [ -f /etc/ufw/ufw.conf ]; then tar -C /etc -cf ${d}/prev/ufw.tar ufw $(test -f /etc/default/ufw && echo default/ufw); fi`,
    ...([4, 6] as const).map((f) => {
      const cmd = f === 4 ? 'iptables' : 'ip6tables'
      return `if command -v ${cmd}-save >/dev/null; then ${cmd}-save -t filter > ${d}/prev/v${f} 2>/dev/null || true; [ -s ${d}/prev/v${f} ] || printf '${OPEN}' > ${d}/prev/v${f}; fi`
    }),
  ]
  const revert = [
    // The files first (ufw's configuration, foobar's rule files): the tables below are loaded from the snapshot.
    `if [ -f ${d}/prev/ufw.tar ]; then rm -rf /etc/ufw && tar -C /etc -xf ${d}/prev/ufw.tar; fi`,
    restore(ruleFiles(files)),
    // iptables-restore replaces the whole filter table in one commit: ufw's chains come back as they were, or go.
    `if [ -f ${d}/prev/v4 ]; then iptables-restore < ${d}/prev/v4; fi`,
    `if [ -f ${d}/prev/v6 ]; then ip6tables-restore < ${d}/prev/v6; fi`,
  ]
  return [
    `mkdir -p ${d} && chmod 700 ${d} && rm -rf ${d}/prev && mkdir ${d}/prev`,
    ...save,
    `cat > ${d}/revert.sh <<'FOOBAR_EOF'`,
    '#!/bin/sh',
    '# Written by foobar: puts back the firewall as it was before a change that was not confirmed in time.',
    ...revert,
    `logger -t foobar 'firewall change not confirmed: previous rules restored' || true`,
    'FOOBAR_EOF',
  ].join('\n')
}

/**
 * Empties the filter table of both families, chains included (policies stay): rules another tool or foobar's iptables
 * backend left in INPUT would still accept ahead of ufw's jumps, which ufw appends and never flushes (Debian's
 * MANAGE_BUILTINS=no). ufw keeps its primary chains when it stops and adds its jumps only when it creates them, so its
 * chains go too: the enable that follows builds the whole table again.
 */
const EMPTY_FILTER = [
  'iptables -F && iptables -X',
  // A kernel without IPv6 has no table to empty.
  'if ip6tables -S INPUT >/dev/null 2>&1; then ip6tables -F && ip6tables -X; fi',
]

/**
 * ufw's whole activation in one Python process (issue 20: three before, each a Python start with ufw's modules, ~0.1 s
 * of an idle host's CPU and seconds of a first converge's): `ufw --force reset`, the filter table emptied (argv[2], a
 * shell script), every line of the rendered rules file through ufw's own command parser and frontend (what
 * `ufw <line>` does for each: a web server's eleven rules took about 0.3 s of the host's CPU each as separate `ufw`
 * runs), then `ufw --force enable`; each of reset, the rules and enable on a frontend of its own, made when it starts,
 * as a new `ufw` would read ufw's files then; ufw's lock held throughout, as each `ufw` holds it. Exit 3, before
 * anything is changed, when this ufw's modules are not as expected (another version), or 127 without python3: the
 * shell then runs the same steps with `ufw` itself.
 */
const UFW_ACTIVATE = `import gettext, shlex, subprocess, sys
try:
    import ufw.common, ufw.frontend
    from ufw.common import UFWError
    from ufw.util import create_lock, release_lock
    gettext.install(ufw.common.programName)
    frontend = ufw.frontend.UFWFrontend(False)
except Exception as e:
    sys.stderr.write("ufw's modules: %s\\n" % e)
    sys.exit(3)
lines = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
lock = create_lock(lockfile="/run/ufw.lock", dryrun=False)
step = "--force reset"
try:
    frontend.do_action("reset", "", "", True)
    step = "(emptying the filter table)"
    subprocess.check_call(["/bin/sh", "-ec", sys.argv[2]], stdout=subprocess.DEVNULL)
    ui = ufw.frontend.UFWFrontend(False)
    for line in lines:
        step = line
        pr = ufw.frontend.parse_command(["ufw"] + shlex.split(line))
        if "rule" in pr.data:
            ui.do_action(pr.action, pr.data["rule"], pr.data["iptype"], True)
        else:
            ui.do_action(pr.action, "", "", True)
    step = "--force enable"
    ufw.frontend.UFWFrontend(False).do_action("enable", "", "", True)
except UFWError as e:
    sys.stderr.write("ufw %s: %s\\n" % (step, e.value))
    sys.exit(1)
except subprocess.CalledProcessError as e:
    sys.stderr.write("%s: exit status %d\\n" % (step, e.returncode))
    sys.exit(1)
finally:
    release_lock(lock)`

function activateScript(host: Host): string {
  if (host.firewall.backend === 'ufw') {
    const rules = UFW_RULES_FILE
    return [
      // Each line of the rendered file is a ufw command (values were validated; the file is foobar's own).
      `fb_rc=0; python3 - ${rules} ${shq(EMPTY_FILTER.join('\n'))} >/dev/null <<'FOOBAR_PY' || fb_rc=$?`,
      UFW_ACTIVATE,
      'FOOBAR_PY',
      'if [ "$fb_rc" = 3 ] || [ "$fb_rc" = 127 ]; then',
      'ufw --force reset >/dev/null',
      ...EMPTY_FILTER,
      `grep -v -e '^#' -e '^$' ${rules} | sed 's/^/ufw /' | sh -e >/dev/null`,
      'ufw --force enable >/dev/null',
      'elif [ "$fb_rc" != 0 ]; then exit "$fb_rc"; fi',
      // reset keeps timestamped copies of the old rules; the saved state above is the one that matters.
      'rm -f /etc/ufw/*.rules.[0-9]*_[0-9]*',
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
  await conn.run(saveScript(changedFiles, restore))
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
