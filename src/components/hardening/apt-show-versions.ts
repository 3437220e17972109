import type {InstallGuard} from '../../engine/contract.js'

/*
 * apt-show-versions' cache, built at its first use instead of inside foobar's package transaction (issue 20).
 *
 * Its postinst runs `apt-show-versions -i` to build the cache ahead of time: ~4 s of a lab host's CPU in every
 * hardened host's first install, with the three hosts' transactions sharing two cores. apt-show-versions builds a
 * missing cache itself, and brings a stale one up to date, whenever it runs (Lynis' PKGS-7392 runs it, as does the
 * package's daily timer and apt's update hook), so the cache is the same either way; only when it is built moves.
 * For the transaction only, an `apt-show-versions` first in the maintainer scripts' PATH (apt gives them
 * /usr/sbin before /usr/bin) skips exactly that call and passes every other to the real one.
 */

export const APT_SHOW_VERSIONS_GUARD: InstallGuard = {
  package: 'apt-show-versions',
  path: '/usr/sbin/apt-show-versions',
  mode: 0o755,
  note: "apt-show-versions' postinst leaves its cache to be built at its first use",
  content: `#!/bin/sh
# Written by foobar for its package transaction only, and removed after it: the postinst's cache build is left to
# apt-show-versions' first use (it builds a missing cache itself); every other call goes to the real one.
[ "$#" = 1 ] && [ "$1" = -i ] && exit 0
exec /usr/bin/apt-show-versions "$@"
`,
}
