import type {Host} from '../inventory/index.js'
import {TIMED_OUT, type Transport} from '../remote/runner.js'
import {pool} from '../util/pool.js'

/** One host's answer to `foobar exec`. */
export interface ExecResult {
  host: string
  /** The command's exit status; absent when the host could not be reached. */
  code?: number
  stdout: string
  stderr: string
  seconds: number
  /** Why there is no exit status: the connection failed, or the command ran past the timeout. */
  error?: string
}

export interface ExecOptions {
  transport: Transport
  concurrency: number
  /** As root (sudo -n for a non-root login, as provisioning does), or as the login user. */
  root: boolean
  timeoutMs: number
  /** Called as each host finishes (in the order they finish), for output while the others run. */
  onResult?: (r: ExecResult) => void
}

/**
 * Runs one shell command on each host (at most `concurrency` at once) and collects each host's output and exit
 * status; results in the hosts' order. A host that cannot be reached, or a command past its timeout, is a result
 * with `error`, never a thrown error: the others still run.
 */
export async function execOnHosts(hosts: Host[], command: string, o: ExecOptions): Promise<ExecResult[]> {
  return pool(hosts, o.concurrency, async (host) => {
    const t0 = Date.now()
    let result: ExecResult
    try {
      const runner = await o.transport.open(host)
      try {
        const r = await runner.run(command, {root: o.root, check: false, timeoutMs: o.timeoutMs})
        result = {host: host.name, code: r.code, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - t0) / 1000}
        if (r.code === TIMED_OUT && o.timeoutMs > 0 && Date.now() - t0 >= o.timeoutMs)
          result.error = `timed out after ${o.timeoutMs / 1000} s`
      } finally {
        runner.close()
      }
    } catch (error) {
      result = {host: host.name, stdout: '', stderr: '', seconds: (Date.now() - t0) / 1000, error: (error as Error).message}
    }
    o.onResult?.(result)
    return result
  })
}
