import {execFile} from 'node:child_process'
import {Failure} from '../util/errors.js'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** What is being done, for the error message ("web1: mount overlay"). */
  what?: string
  timeoutMs?: number
  /** Resolve with the exit code instead of throwing on a non-zero exit. */
  allowFailure?: boolean
  env?: NodeJS.ProcessEnv
}

/** Run a local program (no shell) and collect its output; a failure names what was being done. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const what = opts.what ?? `${file} ${args.join(' ')}`
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env},
      (err, stdout, stderr) => {
        const failure = err as {code?: unknown; killed?: boolean; message: string} | null
        if (failure && typeof failure.code !== 'number') {
          const reason = failure.killed ? `timed out after ${(opts.timeoutMs ?? 60_000) / 1000} s` : failure.message
          reject(new Failure(`${what}: ${reason}`))
          return
        }
        const code = failure ? Number(failure.code) : 0
        if (code !== 0 && !opts.allowFailure) {
          const tail = `${stderr}${stdout}`.trim().split('\n').slice(-5).join(' | ')
          reject(new Failure(`${what}: exit ${code}: ${tail}`))
          return
        }
        resolve({code, stdout, stderr})
      },
    )
  })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Poll `probe` until it returns a value (not undefined) or the timeout passes; then throw `failure()`,
 * which names the host or service that did not come up (and may look around first: it can be async).
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  opts: {timeoutMs: number; intervalMs?: number; failure: () => string | Promise<string>},
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() >= deadline) throw new Failure(await opts.failure())
    await sleep(opts.intervalMs ?? 250)
  }
}
