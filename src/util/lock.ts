import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'
import {mkdirSync, readFileSync} from 'node:fs'
import {hostname, userInfo} from 'node:os'
import {dirname} from 'node:path'
import {LockedError} from './errors.js'
import {ensureDir, shq} from './shell.js'
import {sleep} from './wait.js'

/*
 * Locks held by a process whose life is tied to ours: flock(1) keeps the lock while its child `cat` reads our pipe;
 * when this process ends — normally, by a crash or by SIGKILL — the pipe closes, cat exits and the kernel drops
 * the lock. A holder that is gone therefore never holds a lock, and nothing has to judge staleness. The same
 * command runs on the control machine (the inventory's lock) and on each host over SSH (engine/run.ts).
 */

/** Who holds a lock: written next to it by the holder, shown to a run that finds it taken. */
export function holderInfo(command: string): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry for this uid: keep "unknown"
  }
  return `${user}@${hostname()} (pid ${process.pid}) since ${new Date().toISOString()}: ${command}`
}

/** flock exits with this when the lock is taken (-E), apart from its own failures. */
export const BUSY = 75

/**
 * The shell command that takes `path`'s lock without waiting, records the holder, says `locked` and holds the
 * lock until its standard input closes. The shell opens the file on descriptor 9 and flock(1) locks that
 * descriptor; the shell then becomes `cat`, which keeps it open: two processes fewer than flock running a shell
 * (issue 20: every changing run takes this lock on every host), the same lock (flock on the same file).
 */
export function holdScript(path: string, info: string): string {
  return [
    `{ ${ensureDir(dirname(path))}; } && exec 9>>${shq(path)} && flock -n -E ${BUSY} 9 || exit`,
    `printf '%s\\n' ${shq(info)} > ${shq(`${path}.holder`)}; echo locked; ${THEN_SLOT} exec cat >/dev/null`,
  ].join('; ')
}

/**
 * Where holdScript's shell, once it holds the lock, runs what a transport puts there (Runner.hold's `then`: a host's
 * facts in the lock's own round trip); a no-op as it stands.
 */
export const THEN_SLOT = ': fb-then;'

export interface Held {
  release(): void
}

/** Takes the control machine's lock at `path` (waiting up to `waitMs`), or throws LockedError naming the holder. */
export async function lockLocal(path: string, info: string, what: string, waitMs = 0): Promise<Held> {
  mkdirSync(dirname(path), {recursive: true, mode: 0o700})
  const deadline = Date.now() + waitMs
  for (;;) {
    const child = spawn('sh', ['-c', holdScript(path, info)], {stdio: ['pipe', 'pipe', 'pipe']})
    const outcome = await firstLine(child)
    if (outcome === 'locked') {
      // Never keeps this process alive on its own: it ends with us, and so does the lock.
      child.unref()
      for (const s of [child.stdin, child.stdout, child.stderr] as Array<{unref?: () => void}>) s.unref?.()
      return {release: () => child.stdin.end()}
    }
    if (outcome !== 'busy') throw new Error(`cannot lock ${path}: ${outcome}`)
    if (Date.now() >= deadline) {
      const holder = readHolder(`${path}.holder`)
      throw new LockedError(`${what} is locked by another foobar run: ${holder}`, {[what]: holder})
    }
    await sleep(Math.min(1000, Math.max(50, deadline - Date.now())))
  }
}

function readHolder(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim() || 'a run that has not said who it is yet'
  } catch {
    return 'a run that has not said who it is yet'
  }
}

/** `locked` once the child holds the lock, `busy` when flock said it is taken, else what went wrong. */
function firstLine(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve) => {
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('locked\n')) resolve('locked')
    })
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', (e) => resolve(e.message))
    child.on('exit', (code) => resolve(code === BUSY ? 'busy' : `exit ${code}: ${err.trim()}`))
  })
}
