/** Quote one argument for a POSIX shell: the only way values enter remote commands. */
export function shq(value: string | number): string {
  const s = String(value)
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** `mkdir -p` only when the directory is not there: a test of the shell's own instead of a process (issue 20). */
export const ensureDir = (dir: string) => `[ -d ${shq(dir)} ] || mkdir -p ${shq(dir)}`

/**
 * The traps that turn a hangup, an interrupt, a closed pipe or a TERM into an exit, so the shell's EXIT trap runs (dash
 * runs none when a signal ends it). SIGPIPE matters most: sshd closes the pipes when the connection drops, and the
 * next write to them raises it.
 */
export const SIGNALS_EXIT = ["trap 'exit 129' HUP", "trap 'exit 130' INT", "trap 'exit 141' PIPE", "trap 'exit 143' TERM"]
