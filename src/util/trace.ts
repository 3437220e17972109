/**
 * `FOOBAR_TRACE=1`: each SSH connection and remote command with its duration, and the local steps of a run (`mark`),
 * on stderr, stamped with the seconds since the process started: what a slow run spends its time on. A remote
 * command shows its first line only, cut at 100 characters: secrets never reach a command line (stdin).
 */
export const TRACE = Boolean(process.env.FOOBAR_TRACE)

/** A remote step that took `ms` on `host`. */
export function trace(host: string, ms: number, what: string): void {
  if (!TRACE) return
  const line = what.split('\n')[0]!.replace(/\s+/g, ' ')
  process.stderr.write(`trace +${process.uptime().toFixed(3)}s ${host} ${ms} ms ${line.length > 100 ? `${line.slice(0, 97)}...` : line}\n`)
}

if (TRACE) {
  process.on('exit', (code) => {
    const {user, system} = process.cpuUsage()
    mark(`exit ${code}; this process used ${((user + system) / 1e6).toFixed(2)} s of CPU (its child processes not counted)`)
  })
}

/** A local step reached (`-` in the host column). */
export function mark(what: string): void {
  if (TRACE) process.stderr.write(`trace +${process.uptime().toFixed(3)}s - - ${what}\n`)
}
