import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {readFile, readdir, writeFile} from 'node:fs/promises'
import {Failure} from '../util/errors.js'
import {sleep} from './exec.js'

export interface ProcessInfo {
  pid: number
  argv: string[]
}

async function readProc(pid: number, file: string): Promise<string | undefined> {
  try {
    return await readFile(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return undefined
  }
}

/** The command line of a live process, or undefined if it is gone or a zombie (PID 1 here reaps late). */
export async function argvOf(pid: number): Promise<string[] | undefined> {
  const stat = await readProc(pid, 'stat')
  if (stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined
  const cmdline = await readProc(pid, 'cmdline')
  return cmdline ? cmdline.split('\0').filter((a) => a !== '') : undefined
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(file, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 1 ? pid : undefined
  } catch {
    return undefined
  }
}

/** A PID from a PID file, only if that process is still ours (its command line contains `marker`): PIDs get reused. */
export async function livePid(file: string, marker: string): Promise<number | undefined> {
  const pid = await readPid(file)
  if (pid === undefined) return undefined
  const argv = await argvOf(pid)
  return argv?.join(' ').includes(marker) ? pid : undefined
}

export async function allProcesses(): Promise<ProcessInfo[]> {
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number)
  const found = await Promise.all(pids.map(async (pid) => ({pid, argv: await argvOf(pid)})))
  return found.filter((p): p is ProcessInfo => p.argv !== undefined)
}

/**
 * Start a long-lived program in its own session (so Ctrl-C on the caller does not reach it), output appended to a
 * log file (never a pipe: nspawn dies when its pipe closes), and record its PID at once so `lab down` finds it.
 */
export async function startDetached(opts: {
  file: string
  args: string[]
  log: string
  pidFile: string
  env?: NodeJS.ProcessEnv
}): Promise<number> {
  const fd = openSync(opts.log, 'a')
  try {
    const child = spawn(opts.file, opts.args, {detached: true, stdio: ['ignore', fd, fd], env: opts.env ?? process.env})
    if (child.pid === undefined) throw new Failure(`could not start ${opts.file} (see ${opts.log})`)
    child.on('error', () => {})
    child.unref()
    await writeFile(opts.pidFile, `${child.pid}\n`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // Already gone.
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await argvOf(pid)) === undefined) return true
    await sleep(100)
  }
  return (await argvOf(pid)) === undefined
}

/** SIGTERM, wait, then SIGKILL (also to `alsoKill`, e.g. a guest's PID 1 that would outlive its nspawn). */
export async function stopProcess(pid: number, what: string, opts: {timeoutMs?: number; alsoKill?: number[]} = {}) {
  signal(pid, 'SIGTERM')
  if (await waitGone(pid, opts.timeoutMs ?? 15_000)) return
  for (const p of [pid, ...(opts.alsoKill ?? [])]) signal(p, 'SIGKILL')
  if (!(await waitGone(pid, 5000))) throw new Failure(`${what} (pid ${pid}) did not stop, even after SIGKILL`)
}

export function killNow(pids: number[]): void {
  for (const pid of pids) signal(pid, 'SIGKILL')
}

export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
  const lists = await Promise.all(tasks.map((t) => readProc(pid, `task/${t}/children`)))
  return lists.flatMap((l) => (l ?? '').split(/\s+/).filter(Boolean).map(Number))
}

async function descendantsOf(pid: number): Promise<number[]> {
  const direct = await childrenOf(pid)
  const deeper = await Promise.all(direct.map((c) => descendantsOf(c)))
  return [...direct, ...deeper.flat()]
}

/** Proportional set size of a process tree in MiB (shared image pages are split fairly between the hosts). */
export async function treePssMiB(pid: number): Promise<number> {
  const pids = [pid, ...(await descendantsOf(pid))]
  const sizes = await Promise.all(
    pids.map(async (p) => {
      const rollup = await readProc(p, 'smaps_rollup')
      const m = rollup?.match(/^Pss:\s+(\d+) kB/m)
      return m ? Number(m[1]) : 0
    }),
  )
  return Math.round(sizes.reduce((a, b) => a + b, 0) / 1024)
}
