import {Command, Config, Errors, Flags, Interfaces, ux} from '@oclif/core'
import {ChangesPending, ExitCode, Failure, Outcome, PartialFailure, UserError, exitCodeOf} from '../util/errors.js'
import {type Host, type Inventory, ROLES, selectHosts} from '../inventory/index.js'
import type {LocalNeeds} from './local-files.js'
import {closest} from './suggest.js'
import {mark} from '../util/trace.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  Omit<(typeof FoobarCommand)['baseFlags'], keyof T['flags']> & T['flags']
>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** What `--json` prints, once, for every command: success and failure alike. `status` is the exit code. */
export interface Envelope {
  status: number
  result: unknown
  warnings: string[]
  error?: EnvelopeError
}

export interface EnvelopeError {
  name: string
  message: string
  details?: string[]
  suggestions?: string[]
  /** Host (or `host check`) -> why, when some failed and the others were done. */
  failed?: Record<string, string>
}

/**
 * Every foobar command: `--json` and `-i/--inventory`; `--limit` only where a command declares `limitFlag`
 * (src/cli/run-flags.ts).
 *
 * A command returns its result; the base class prints it and sets the exit code. Under `--json` that is one envelope
 * on stdout (`{status, result, warnings, error?}`, see README "JSON output"); for humans, the command's own lines
 * (`say`) and, on failure, `Error: ...` on stderr. A non-zero exit that still has a result goes through
 * `this.outcome(...)`; an error without one is simply thrown (UserError, Failure, ...). Commands never print JSON
 * nor exit themselves: `this.logJson(x)` and `this.exit(n)` do not type-check, and throw if forced.
 */
export abstract class FoobarCommand<T extends typeof Command> extends Command {
  static enableJsonFlag = true

  static baseFlags = {
    inventory: Flags.string({
      char: 'i',
      summary: 'Inventory file (YAML).',
      env: 'FOOBAR_INVENTORY',
      default: 'inventories/foobar.yml',
      helpGroup: 'GLOBAL',
    }),
  }

  /**
   * oclif's Command.run loads the CLI's config a second time when the config that found the command passes itself
   * in (about 30 ms of every start here, issue 20): a command found by this CLI's config runs on that config.
   */
  public static async run<C extends Command>(
    this: new (argv: string[], config: Config) => C,
    argv: string[] = process.argv.slice(2),
    opts?: Interfaces.LoadOptions,
  ): Promise<ReturnType<C['run']>> {
    if (!(opts instanceof Config)) return Command.run.call(this as never, argv, opts) as Promise<ReturnType<C['run']>>
    return (new this(argv, opts) as unknown as {_run(): Promise<ReturnType<C['run']>>})._run()
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private readonly warnings: string[] = []
  /** Set once a line-per-result stream (`monitor qps --watch --json`) has begun: the final envelope is one line too. */
  private streaming = false

  public async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof FoobarCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    mark(`command ${this.id ?? ''} started`)
  }

  /** Print for humans only (suppressed under --json). */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  /**
   * Something the user should know that does not change the exit code. Under --json it goes to the envelope's
   * `warnings`; for humans to stderr (`Warning: ...`), unless `said`: the command's human output already says it.
   * oclif's own warnings (deprecations) land here too.
   */
  public warn(input: string | Error, said = false): string | Error {
    this.warnings.push(typeof input === 'string' ? input : input.message)
    if (said) return input
    return super.warn(input)
  }

  /**
   * End with a non-zero exit code and still return `result`: under --json the envelope carries the result and the
   * error; for humans `Error: message` on stderr, unless `quiet` (the command printed its own report). Never returns.
   */
  protected outcome(
    result: unknown,
    code: typeof ExitCode.failure | typeof ExitCode.partial | typeof ExitCode.changesPending,
    message: string,
    o: {failed?: Record<string, string>; quiet?: boolean} = {},
  ): never {
    const error =
      code === ExitCode.partial
        ? new PartialFailure(message, o.failed ?? {})
        : code === ExitCode.changesPending
          ? new ChangesPending(message)
          : Object.assign(new Failure(message, code), o.failed ? {failed: o.failed} : {})
    throw new Outcome(result, error, o.quiet ?? false)
  }

  /**
   * `result`, unless `check` throws (e.g. `failIfNeeded`: some hosts failed): then the command ends with that error's
   * exit code and `result` still in the envelope. A usage error (UserError) has no result and passes through.
   */
  protected withResult<R>(result: R, check: () => void): R {
    try {
      check()
    } catch (error) {
      if (error instanceof Error && !(error instanceof UserError) && !(error instanceof Outcome)) throw new Outcome(result, error)
      throw error
    }
    return result
  }

  /**
   * The hosts `--limit` names (host names or roles; an unknown name is a usage error, exit 2), every host without
   * it. Pass `this.flags.limit`, which exists only in commands that declare `limitFlag`. A role that no host has is a
   * warning.
   */
  protected limitHosts(inventory: Inventory, limit: string[] | undefined): Host[] {
    const hosts = selectHosts(inventory, limit)
    for (const term of (limit ?? []).map((l) => l.trim()).filter(Boolean)) {
      const wanted = term.replace(/^!\s*/, '')
      if (
        (ROLES as readonly string[]).includes(wanted) &&
        !inventory.hosts.some((h) => h.name === wanted || h.roles.includes(wanted as never))
      )
        this.warn(`--limit ${term}: no host has this role`)
    }
    return hosts
  }

  /**
   * Before any host is contacted: reads and checks the local files and secrets that reaching `hosts` (and running
   * `needs` on them) reads — identity files, known_hosts, ssh_config, secrets, tls.source files. A problem is exit 2
   * (LocalFilesError: every problem, each naming the field and the path), the same in every command and in
   * `inventory check`; a key or secret file others can read is a warning. Loaded on demand (SSH and the components
   * are not needed by every command).
   */
  protected async requireLocalFiles(inventory: Inventory, hosts: Host[], needs: LocalNeeds = {}): Promise<void> {
    mark('inventory loaded')
    const [{LocalFilesError, loadRoutes, localReads, runReads}, {loadSsh}] = await Promise.all([
      import('./local-files.js'),
      import('../remote/connection.js'),
    ])
    // The SSH client, which every command here needs next, loads while ssh_config's resolution waits on `ssh -G`
    // (a failure to load is the connection's to report).
    loadSsh().catch(() => undefined)
    await loadRoutes(hosts, needs.ssh)
    mark('ssh_config resolved')
    const {problems, warnings} = runReads(localReads(inventory, hosts, needs))
    for (const w of warnings) this.warn(w)
    if (problems.length > 0)
      // Named as given (-i), like every message about the inventory.
      throw new LocalFilesError((this.flags as {inventory?: string}).inventory ?? inventory.file, problems, [
        'Nothing was contacted. Fix the files above; `foobar inventory check` reads every file and secret the inventory refers to.',
      ])
  }

  /**
   * `--watch --json`: one compact envelope per line, for piping (human mode prints nothing here). The command then
   * keeps going; whatever ends it is one line too.
   */
  protected stream(result: unknown): void {
    if (!this.jsonEnabled()) return
    this.streaming = true
    process.stdout.write(`${JSON.stringify({status: ExitCode.ok, result, warnings: this.warnings} satisfies Envelope)}\n`)
  }

  /** Commands return their result (or call `outcome`): only the base class prints JSON. */
  protected logJson(_json: never): never {
    throw new Error('foobar commands return their result; the base class prints the JSON envelope')
  }

  /** Commands return, throw, or call `outcome`: only the base class chooses the exit code. */
  public exit(_code?: never): never {
    throw new Error('foobar commands return their result or call this.outcome(); the base class sets the exit code')
  }

  /** oclif's run loop, with one exit for every command: the envelope under --json, the human error otherwise. */
  protected async _run<R>(): Promise<R> {
    let result: unknown
    let error: unknown
    try {
      await this.init()
      result = await this.run()
    } catch (caught) {
      error = caught ?? new Error('undefined was thrown')
    }
    try {
      await this.finally(error as Error | undefined)
    } catch (caught) {
      error ??= caught
    }
    if (error === undefined) {
      if (this.jsonEnabled()) this.printEnvelope({status: ExitCode.ok, result: result ?? null, warnings: this.warnings})
      return result as R
    }
    return this.fail(error as Error)
  }

  private async fail(err: Error): Promise<never> {
    // An exit chosen by oclif itself (not by a foobar command): pass it on.
    if ((err as {code?: string}).code === 'EEXIT') throw err
    const outcome = err instanceof Outcome ? err : undefined
    const cause = outcome?.error ?? err
    const code = exitCodeOf(cause)
    const unknownFlags = (cause as {flags?: unknown}).flags
    if (cause.constructor.name === 'NonExistentFlagsError' && Array.isArray(unknownFlags))
      cause.message = cause.message.replace(/^.*/, (first) => first + this.flagHints(unknownFlags as string[]))
    if (this.jsonEnabled()) {
      this.printEnvelope({
        status: code,
        result: outcome ? (outcome.result ?? null) : null,
        warnings: this.warnings,
        error: describeError(cause),
      })
      Errors.exit(code)
    }
    if (outcome) {
      if (!outcome.quiet) process.stderr.write(`Error: ${cause.message}\n`)
      Errors.exit(code)
    }
    if (cause instanceof UserError) {
      const lines = [cause.message, ...cause.details.map((d) => `  - ${d}`)]
      if (cause.suggestions.length > 0) lines.push('Try this:', ...cause.suggestions.map((s) => `  ${s}`))
      process.stderr.write(`Error: ${lines.join('\n')}\n`)
      Errors.exit(ExitCode.badInput)
    }
    // oclif's own parse errors (unknown flag, missing arg) are usage errors: oclif prints them (with the help hint).
    const isParse = (cause as {oclif?: unknown}).oclif !== undefined && code === ExitCode.badInput
    if (!isParse && (code !== ExitCode.failure || cause.name !== 'Error')) {
      process.stderr.write(`Error: ${cause.message}\n`)
      Errors.exit(code)
    }
    // An unexpected error: oclif prints it (a stack trace with DEBUG) and exits 1.
    await super.catch(cause)
    throw cause
  }

  /** " (did you mean --limit?)" for each unknown flag close to one of this command's. */
  private flagHints(unknown: string[]): string {
    const all = {...(this.ctor as typeof FoobarCommand).baseFlags, ...this.ctor.flags}
    const names = [...Object.keys(all), ...(this.ctor.enableJsonFlag ? ['json'] : [])].map((n) => `--${n}`)
    const hints = unknown.flatMap((typed) => {
      const f = typed.split('=')[0]!
      const guess = closest(f, names)
      return guess ? [{f, guess}] : []
    })
    if (hints.length === 0) return ''
    if (unknown.length === 1) return ` (did you mean ${hints[0]!.guess}?)`
    return ` (did you mean ${hints.map((h) => `${h.guess} for ${h.f}`).join(', ')}?)`
  }

  private printEnvelope(envelope: Envelope): void {
    if (this.streaming) process.stdout.write(`${JSON.stringify(envelope)}\n`)
    else ux.stdout(ux.colorizeJson(envelope, {pretty: true, theme: this.config.theme?.json}))
  }
}

/** The envelope's `error`: name and message, and what a typed error adds (details, suggestions, failed hosts). */
export function describeError(err: Error): EnvelopeError {
  // oclif's parse errors are all named `Error`, end with a help hint: name them by class, the hint as a suggestion.
  const parse = 'oclif' in err && !(err instanceof UserError) && exitCodeOf(err) === ExitCode.badInput
  const hint = /\nSee more help with --help$/
  if (parse && hint.test(err.message)) {
    return {
      name: err.name === 'Error' ? err.constructor.name : err.name,
      message: err.message.replace(hint, ''),
      suggestions: ['See more help with --help'],
    }
  }
  return {
    name: parse && err.name === 'Error' ? err.constructor.name : err.name,
    message: err.message,
    ...(err instanceof UserError ? {details: err.details, suggestions: err.suggestions} : {}),
    ...('failed' in err && err.failed && typeof err.failed === 'object' ? {failed: err.failed as Record<string, string>} : {}),
  }
}
