import type {DesiredFile, InstallGuard} from '../../engine/contract.js'
import {file} from '../../engine/contract.js'

/*
 * rkhunter's file properties database, built after foobar's package transaction instead of inside it (issue 20).
 *
 * On a first install, rkhunter's postinst runs `rkhunter --propupd` (scripts/rkhupd.sh): it hashes and stats some
 * 120 system binaries with hundreds of short processes, 40 s on an idle lab host and 130 s of a first provision's
 * 210 s of packages on 2 cores with three hosts installing. rkhupd.sh skips the build when rkhunter's config
 * disables the properties tests, so for the transaction only foobar puts such a config where none is (an install
 * guard), and afterwards builds the database in the background, niced, with rkhunter's own script
 * (`foobar-rkhunter-propupd.service`, started by provision's plan while the database is missing). The database is
 * then taken from the host as the whole transaction left it, not halfway through. verify says whether it is built,
 * being built, or missing.
 */

export const RKHUNTER_DB = '/var/lib/rkhunter/db/rkhunter.dat'
export const RKHUNTER_UNIT = 'foobar-rkhunter-propupd.service'
const RKHUPD = '/usr/share/rkhunter/scripts/rkhupd.sh'
/**
 * Written when the build ran (rkhupd.sh builds nothing where an operator switched the properties tests off). By the
 * same process, not an ExecStartPost: in the lab's containers systemd failed to place that second process in the
 * unit's control group (219/CGROUP) and marked a unit whose build had succeeded as failed.
 */
export const RKHUNTER_DONE = '/var/lib/foobar/rkhunter-propupd.done'

export const RKHUNTER_GUARD: InstallGuard = {
  package: 'rkhunter',
  path: '/etc/rkhunter.conf.local',
  content: `# Written by foobar for its package transaction only, and removed after it: rkhunter's postinst then skips
# building the file properties database, which ${RKHUNTER_UNIT} builds afterwards.
DISABLE_TESTS=properties
`,
}

const SERVICE = `# Managed by foobar: rkhunter's file properties database (rkhunter --propupd), built once after foobar's package
# transaction installed rkhunter, instead of inside it.
[Unit]
Description=rkhunter file properties database, built after foobar installed rkhunter
ConditionPathExists=!${RKHUNTER_DB}
ConditionPathExists=${RKHUPD}

[Service]
Type=oneshot
# The least urgent work on the host: it yields to everything else, a Lynis run for verify included. Nice alone does
# not, where the kernel groups processes by session (autogroup, Debian's default): every service is a session of
# its own, and a nice value counts only within it; the session's own nice value is set here.
ExecStart=/bin/sh -c '{ echo 19 > /proc/self/autogroup; } 2>/dev/null; ${RKHUPD} && mkdir -p /var/lib/foobar && touch ${RKHUNTER_DONE}'
Nice=19
IOSchedulingClass=idle
`

export function rkhunterState(): {files: DesiredFile[]; guards: InstallGuard[]} {
  return {files: [file(`/etc/systemd/system/${RKHUNTER_UNIT}`, SERVICE)], guards: [RKHUNTER_GUARD]}
}

/** The facts line: `rkhunter built|missing` (nothing where rkhunter is not installed). */
export const rkhunterFactsScript = (): string =>
  `if [ -e ${RKHUNTER_DB} ] || [ -e ${RKHUNTER_DONE} ]; then echo 'rkhunter built'; elif [ -x /usr/bin/rkhunter ]; then echo 'rkhunter missing'; fi`

/** Pure: the database's state from the facts: built, being built (the unit runs), missing, or no rkhunter. */
export function rkhunterDbState(
  db: string | undefined,
  unit: {enabled: string; active: string} | undefined,
): 'built' | 'building' | 'missing' | undefined {
  if (db === 'built') return 'built'
  if (db !== 'missing') return undefined
  return unit && ['activating', 'active', 'reloading'].includes(unit.active) ? 'building' : 'missing'
}
