/**
 * Exit codes are part of foobar's interface: scripts and cron depend on them.
 *
 * | code | meaning                                                                   |
 * |------|---------------------------------------------------------------------------|
 * | 0    | success (or nothing to do)                                                |
 * | 1    | failure                                                                   |
 * | 2    | bad input or usage: nothing was changed                                   |
 * | 3    | partial: some hosts failed, the others were done                          |
 * | 4    | `plan --detailed-exitcode`: changes are pending; `firewall status`: drift |
 * | 5    | busy: another run holds the lock (named); nothing was changed             |
 * | 6    | `provision --canary`: the canary was judged worse and put back; no other host was changed |
 *
 * Under --json the code is also the envelope's `status` (src/cli/base.ts).
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  badInput: 2,
  partial: 3,
  changesPending: 4,
  locked: 5,
  canaryRejected: 6,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** Another run holds the lock on the inventory or a host (named in the message); nothing was changed. Exit 5. */
export class LockedError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.locked
  constructor(
    message: string,
    readonly holders: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'LockedError'
  }
}

/** An error the user can fix: bad inventory, bad flag, missing secret. Exit 2. */
export class UserError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.badInput
  constructor(
    message: string,
    readonly details: string[] = [],
    readonly suggestions: string[] = [],
  ) {
    super(message)
    this.name = 'UserError'
  }
}

/** A remote command failed on a host. */
/** A remote command as an error shows it: a long script cut to its first 117 characters. */
export const shownCommand = (script: string) => (script.length > 120 ? `${script.slice(0, 117)}...` : script)

export class RemoteError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.failure
  constructor(
    readonly host: string,
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
    message?: string,
  ) {
    super(message ?? `${host}: \`${command}\` failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
    this.name = 'RemoteError'
  }
}

/** Some hosts failed and the others were done. Exit 3. */
export class PartialFailure extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.partial
  constructor(
    message: string,
    readonly failed: Record<string, string>,
  ) {
    super(message)
    this.name = 'PartialFailure'
  }
}

/** A failure with a chosen exit code (1 unless told). */
export class Failure extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.failure,
  ) {
    super(message)
    this.name = 'Failure'
  }
}

/** `provision --canary`: the canary was judged worse than the servers not changed and put back. Exit 6. */
export class CanaryRejected extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.canaryRejected
  constructor(
    message: string,
    readonly failed: Record<string, string>,
  ) {
    super(message)
    this.name = 'CanaryRejected'
  }
}

/** Changes are pending (`plan --detailed-exitcode`) or the live state drifted (`firewall status`). Exit 4. */
export class ChangesPending extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.changesPending
  constructor(message: string) {
    super(message)
    this.name = 'ChangesPending'
  }
}

/**
 * A command that ends with a non-zero exit code and still has a result (verify with failures, drift, hosts that
 * failed): thrown by `FoobarCommand.outcome`, caught by the base class, which prints the result and the error in
 * one envelope. `quiet`: humans already read the command's own report, nothing more goes to stderr.
 */
export class Outcome extends Error {
  constructor(
    readonly result: unknown,
    readonly error: Error,
    readonly quiet = false,
  ) {
    super(error.message)
    this.name = 'Outcome'
  }

  get exitCode(): number {
    return exitCodeOf(this.error)
  }
}

export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof (err as {exitCode: unknown}).exitCode === 'number') {
    return (err as {exitCode: number}).exitCode
  }
  if (err && typeof err === 'object' && 'oclif' in err) {
    const exit = (err as {oclif?: {exit?: number}}).oclif?.exit
    if (typeof exit === 'number') return exit
  }
  return ExitCode.failure
}
