import type {Host} from '../inventory/index.js'

/*
 * The transport seam: the only way the engine and the components touch a host. The SSH connection implements it
 * (remote/connection.ts); unit tests use an in-memory fake that scripts a host's answers.
 */

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  stdin?: string
  /** Run as root (through sudo for a non-root user). Default true: provisioning is root's work. */
  root?: boolean
  /** Throw RemoteError on a non-zero exit (default true). */
  check?: boolean
  /**
   * Give up waiting after this long (default COMMAND_TIMEOUT_MS; 0: never): the command then ends with code 124 and
   * says so. Long by design — apt and first starts take minutes — but a hung command never hangs foobar.
   */
  timeoutMs?: number
  /**
   * Also learn, in this round trip, the address the connection comes from: clientAddress() then answers without
   * asking. For a command run at the start anyway (the facts). A runner that cannot ignores it (and asks later).
   */
  learnClient?: boolean
}

/** How long a remote command may run by default (package installs pass their own, longer, limit). */
export const COMMAND_TIMEOUT_MS = 10 * 60_000
export const TIMED_OUT = 124

export interface Runner {
  readonly host: Host
  /** Warnings for the caller to show (stderr, the JSON envelope): e.g. a private key others can read. */
  readonly warnings?: readonly string[]
  /** Runs a shell snippet (values inside it already quoted with shq). */
  run(script: string, options?: RunOptions): Promise<RunResult>
  /** A file's content as root, or undefined when there is no such file. */
  readFile(path: string): Promise<string | undefined>
  /** Streams `from` on this host into `to` on another (a database dump): nothing is written to disk on either side. */
  pipe(from: string, target: Runner, to: string): Promise<{dump: RunResult; load: RunResult}>
  /** The address this connection comes from, as the host sees it. */
  clientAddress(): Promise<string | undefined>
  /**
   * This end's address of the connection, known without asking the host: what clientAddress() answers unless an
   * address is translated on the way (NAT) or the connection goes through a jump host (then undefined). Only ever a
   * guess to start work early with, checked against clientAddress().
   */
  localAddress?(): string | undefined
  /**
   * Starts a command (as root) that keeps running while its standard input stays open: resolves with its first line
   * of output, or with its exit code when it ends before printing one. `release` closes its input. For locks held
   * for as long as this connection lives (util/lock.ts). Absent: the transport cannot hold a lock.
   *
   * `then`: a script run as root once the first line is `locked`, in the same round trip, while the lock is held (at
   * holdScript's THEN_SLOT); `then` in the answer is its result, as `run` would give it (undefined when the lock was
   * not taken or the channel ended first). `learnClient` as in RunOptions.
   */
  hold?(script: string, then?: {script: string; learnClient?: boolean}): Promise<Held>
  close(): void
}

/** A command holding a lock (Runner.hold). */
export interface Held {
  line: string
  code?: number
  release: () => void
  then?: RunResult
}

/** Opens runners: SSH in real runs, the fake in unit tests. */
export interface Transport {
  open(host: Host): Promise<Runner>
}

/**
 * Opens each host's runner once and hands the same one out again (closeAll ends them). `kept`: runners opened before
 * (the connections holding the run's host locks), handed out first and left open by closeAll: their owner closes them.
 */
export function runnerCache(transport: Transport, runners = new Map<string, Runner>(), kept?: ReadonlyMap<string, Runner>) {
  // Callers that ask at the same time share one opening: a second connection would be left open (and keep the
  // process alive) once the first one took its place.
  const opening = new Map<string, Promise<Runner>>()
  return {
    runners,
    get(host: Host): Promise<Runner> {
      const ready = runners.get(host.name)
      if (ready) return Promise.resolve(ready)
      const held = kept?.get(host.name)
      if (held) {
        runners.set(host.name, held)
        return Promise.resolve(held)
      }
      let p = opening.get(host.name)
      if (!p) {
        p = transport.open(host).then(
          (r) => {
            runners.set(host.name, r)
            opening.delete(host.name)
            return r
          },
          (error: unknown) => {
            opening.delete(host.name)
            throw error
          },
        )
        opening.set(host.name, p)
      }
      return p
    },
    closeAll(): void {
      for (const [name, r] of runners) if (kept?.get(name) !== r) r.close()
      runners.clear()
    },
  }
}

/**
 * A transport that has already begun connecting to `hosts` (the first `limit` of them): a run connects while it still
 * takes its local lock and prepares its material, work that needs no host. Connecting changes nothing on a host. The
 * first open() of such a host takes the connection begun early (or its failure); later ones open anew. close() closes
 * the early connections never taken (a run refused before it used them).
 */
export function preopened(transport: Transport, hosts: Host[], limit: number): Transport & {close(): void} {
  const early = new Map(hosts.slice(0, limit).map((h) => [h.name, transport.open(h)]))
  // Failures are the taker's to report; one never taken must not end the process as an unhandled rejection.
  for (const p of early.values()) p.catch(() => undefined)
  return {
    open(host: Host): Promise<Runner> {
      const p = early.get(host.name)
      if (!p) return transport.open(host)
      early.delete(host.name)
      return p
    },
    close(): void {
      for (const p of early.values())
        p.then(
          (r) => r.close(),
          () => undefined,
        )
      early.clear()
    },
  }
}
