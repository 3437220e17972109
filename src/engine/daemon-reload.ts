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
 * through. A reload still due when the transaction ends (or is cut off) runs then. Anything the shim does not
 * recognise goes to the real systemctl after the due reload: as before.
 */

import {SIGNALS_EXIT, shq} from '../util/shell.js'

/** apt's default DPkg::Path: the PATH it gives dpkg and the maintainer scripts. */
const APT_DPKG_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

/** The shim itself: `$d/real` holds the real systemctl's path. */
const SYSTEMCTL_SHIM = `#!/bin/sh
# Written by foobar for one package transaction, and removed after it: systemd reloads once, when next asked.
d=\${0%/*}
IFS= read -r real < "$d/real" || exit 1
odd=; offline=; verb=
for a in "$@"; do
  case "$a" in
    --|--system|--quiet|-q|--no-ask-password|--no-pager|--global|--preset-mode=*) ;;
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
  esac
fi
if [ -e "$d/reload-due" ]; then rm -f "$d/reload-due"; "$real" daemon-reload || :; fi
exec "$real" "$@"
`

/**
 * Pure: a package transaction run with the shim first in PATH, in a subshell of its own; its exit status is the
 * transaction's. apt-get runs dpkg with a PATH of its own (its `DPkg::Path`, /usr/sbin:/usr/bin:/sbin:/bin by
 * default): `command` is given the shell word to pass as that option (`-o DPkg::Path=WORD`), apt's own value with
 * the shim's folder first. Without systemd running, a temporary directory or a systemctl, the command runs as it
 * was (with apt's own value). `systemdDir`: where a running systemd is seen (a test's; /run/systemd/system by default).
 */
export function oneDaemonReload(command: (dpkgPath: string) => string, o: {systemdDir?: string} = {}): string {
  const running = o.systemdDir ?? '/run/systemd/system'
  if (!/^\/[A-Za-z0-9._/-]+$/.test(running)) throw new Error(`not a plain path: ${running}`)
  return [
    '(',
    'fb_sd=',
    'fb_sc=$(command -v systemctl 2>/dev/null) || fb_sc=',
    `if [ -n "$fb_sc" ] && [ -d ${running} ] && fb_sd=$(mktemp -d 2>/dev/null); then`,
    `  printf '%s\\n' "$fb_sc" > "$fb_sd/real" && printf '%s' ${shq(SYSTEMCTL_SHIM)} > "$fb_sd/systemctl" && chmod 755 "$fb_sd/systemctl" || { rm -rf "$fb_sd"; fb_sd=; }`,
    'fi',
    'fb_reload() { if [ -n "$fb_sd" ]; then if [ -e "$fb_sd/reload-due" ]; then "$fb_sc" daemon-reload || :; fi; rm -rf "$fb_sd"; fb_sd=; fi; }',
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
