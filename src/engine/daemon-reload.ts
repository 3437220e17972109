/**
 * A package transaction's systemd reloads, run as few times as the maintainer scripts allow (issue 20).
 *
 * Debian's maintainer scripts reload systemd once per package that ships a unit (`systemctl --system daemon-reload`
 * in debhelper's snippet): a full-stack install on a lab web server reloaded it 37 times, each ~0.65 s of a busy
 * host (generators and all units read again), about half of its 50 s configure phase. For the transaction only, a
 * `systemctl` first in PATH (the maintainer scripts call it by name) records a reload as due instead, and runs the
 * real reload before the next call that acts on the manager (a start, a stop, an enable...): what systemd has loaded
 * when anything is asked of it is what it would have had. The queries that read only unit files or runtime state
 * (is-enabled, is-active, is-failed) and the offline calls (`--root=`, deb-systemd-helper's preset) pass straight
 * through. The calls that change unit files (enable, disable, mask...: a postinst's own `systemctl enable`) run
 * without the reload they would make, and leave one due instead (`--now` is not among them: it starts). A reload
 * still due when the transaction ends (or is cut off) runs then. Anything the shim does not recognise goes to the
 * real systemctl after the due reload: as before.
 *
 * A reload due is still run once per service a package starts: on a first install, each postinst with a unit asks
 * `deb-systemd-invoke start` for it, and a full-stack install still reloaded systemd ~13 times on each web server
 * (and ran its generators as often). A `deb-systemd-invoke` first in PATH, for the transaction only, notes a plain
 * `start` (the units policy-rc.d does not refuse) and answers as a start does; when the transaction ends (or is
 * cut off), after the due reload, the real one starts them all in one call, with its own rule (enabled units only)
 * and while policy-rc.d is still in place. Every other action (an upgrade's restart, a stop) goes to the real one.
 * Debian's maintainer scripts already live with a start that does not happen at once: policy-rc.d may refuse it.
 */

import {SIGNALS_EXIT, shq} from '../util/shell.js'
import {POLICY_RC_D} from './plan.js'

/** apt's default DPkg::Path: the PATH it gives dpkg and the maintainer scripts. */
const APT_DPKG_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

/** The shim itself: `$d/real` holds the real systemctl's path. */
const SYSTEMCTL_SHIM = `#!/bin/sh
# Written by foobar for one package transaction, and removed after it: systemd reloads once, when next asked.
d=\${0%/*}
IFS= read -r real < "$d/real" || exit 1
odd=; offline=; global=; verb=
for a in "$@"; do
  case "$a" in
    --|--system|--quiet|-q|--no-ask-password|--no-pager|--preset-mode=*) ;;
    --global) global=1 ;;
    --root=*) offline=1 ;;
    -*) odd=1 ;;
    *) [ -n "$verb" ] || verb=$a ;;
  esac
done
[ -z "$offline" ] || exec "$real" "$@"
if [ -z "$odd" ]; then
  case "$verb" in
    daemon-reload) : > "$d/reload-due"; exit 0 ;;
    is-enabled|is-active|is-failed) exec "$real" "$@" ;;
    enable|disable|reenable|preset|mask|unmask)
      [ -n "$global" ] || { "$real" --no-reload "$@"; rc=$?; : > "$d/reload-due"; exit "$rc"; } ;;
  esac
fi
if [ -e "$d/reload-due" ]; then rm -f "$d/reload-due"; "$real" daemon-reload || :; fi
exec "$real" "$@"
`

/** The deb-systemd-invoke shim: `$d/real-dsi` holds the real one's path, `$d/starts` collects the units. */
const invokeShim = (policyRcD: string) => `#!/bin/sh
# Written by foobar for one package transaction, and removed after it: services start when the transaction ends.
d=\${0%/*}
if [ "$1" = start ]; then
  shift
  for u in "$@"; do
    if [ -x ${policyRcD} ]; then ${policyRcD} "$u" start >/dev/null 2>&1; [ "$?" != 101 ] || continue; fi
    printf '%s\\n' "$u" >> "$d/starts"
  done
  exit 0
fi
IFS= read -r real < "$d/real-dsi" || exit 1
exec "$real" "$@"
`

/**
 * Pure: a package transaction run with the shim first in PATH, in a subshell of its own; its exit status is the
 * transaction's. apt-get runs dpkg with a PATH of its own (its `DPkg::Path`, /usr/sbin:/usr/bin:/sbin:/bin by
 * default): `command` is given the shell word to pass as that option (`-o DPkg::Path=WORD`), apt's own value with
 * the shim's folder first. Without systemd running, a temporary directory or a systemctl, the command runs as it
 * was (with apt's own value); without a deb-systemd-invoke, starts are made as they are asked. `systemdDir`: where a
 * running systemd is seen, `policyRcD`: Debian's policy-rc.d (a test's; /run/systemd/system and /usr/sbin/policy-rc.d
 * by default).
 */
export function oneDaemonReload(command: (dpkgPath: string) => string, o: {systemdDir?: string; policyRcD?: string} = {}): string {
  const running = o.systemdDir ?? '/run/systemd/system'
  const policy = o.policyRcD ?? POLICY_RC_D
  for (const p of [running, policy]) if (!/^\/[A-Za-z0-9._/-]+$/.test(p)) throw new Error(`not a plain path: ${p}`)
  return [
    '(',
    'fb_sd=',
    'fb_sc=$(command -v systemctl 2>/dev/null) || fb_sc=',
    'fb_di=$(command -v deb-systemd-invoke 2>/dev/null) || fb_di=',
    `if [ -n "$fb_sc" ] && [ -d ${running} ] && fb_sd=$(mktemp -d 2>/dev/null); then`,
    `  printf '%s\\n' "$fb_sc" > "$fb_sd/real" && printf '%s' ${shq(SYSTEMCTL_SHIM)} > "$fb_sd/systemctl" && chmod 755 "$fb_sd/systemctl" || { rm -rf "$fb_sd"; fb_sd=; }`,
    `  if [ -n "$fb_sd" ] && [ -n "$fb_di" ]; then printf '%s\\n' "$fb_di" > "$fb_sd/real-dsi" && printf '%s' ${shq(invokeShim(policy))} > "$fb_sd/deb-systemd-invoke" && chmod 755 "$fb_sd/deb-systemd-invoke" || rm -f "$fb_sd/deb-systemd-invoke"; fi`,
    'fi',
    // The due reload, then the starts noted (sorted, each once: unit names from the packages' own scripts).
    'fb_reload() { if [ -n "$fb_sd" ]; then if [ -e "$fb_sd/reload-due" ]; then "$fb_sc" daemon-reload || :; fi; if [ -s "$fb_sd/starts" ]; then "$fb_di" start $(sort -u "$fb_sd/starts") >/dev/null 2>&1 || :; fi; rm -rf "$fb_sd"; fb_sd=; fi; }',
    "trap 'fb_reload' EXIT",
    ...SIGNALS_EXIT,
    // apt's configured DPkg::Path (apt-config quotes what it prints for the shell).
    `fb_ap=; eval "$(apt-config shell fb_ap DPkg::Path 2>/dev/null)" 2>/dev/null; [ -n "$fb_ap" ] || fb_ap=${APT_DPKG_PATH}`,
    'if [ -n "$fb_sd" ]; then PATH="$fb_sd:$PATH"; fb_ap="$fb_sd:$fb_ap"; fi',
    'export PATH',
    command('"$fb_ap"'),
    ')',
  ].join('\n')
}
