import {Command, Flags, Interfaces} from '@oclif/core'
import {ExitCode, UserError, exitCodeOf} from './errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  Omit<(typeof FoobarCommand)['baseFlags'], keyof T['flags']> & T['flags']
>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every foobar command: `--json`, `-i/--inventory` and `--limit`, typed errors mapped to the exit-code table,
 * human output only when JSON is off.
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
    limit: Flags.string({
      summary: 'Only these hosts or roles (comma-separated names, e.g. web1,lb).',
      multiple: true,
      delimiter: ',',
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  public async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof FoobarCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** Print for humans only (suppressed under --json). */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  protected async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    // this.exit(n) throws oclif's ExitError: a chosen exit code, not a failure to report.
    if ((err as {code?: string}).code === 'EEXIT') throw err
    const code = exitCodeOf(err)
    // oclif's own parse errors (unknown flag, missing arg) are usage errors.
    const isParse = (err as {oclif?: {exit?: number}}).oclif !== undefined && err.name !== 'UserError' && code === 2
    if (this.jsonEnabled()) {
      this.logJson({
        status: code,
        name: err.name,
        message: err.message,
        ...(err instanceof UserError ? {details: err.details, suggestions: err.suggestions} : {}),
        ...('failed' in err ? {failed: (err as {failed: unknown}).failed} : {}),
      })
      this.exit(code)
    }
    if (err instanceof UserError) {
      const lines = [err.message, ...err.details.map((d) => `  - ${d}`)]
      if (err.suggestions.length > 0) lines.push('Try this:', ...err.suggestions.map((s) => `  ${s}`))
      process.stderr.write(`Error: ${lines.join('\n')}\n`)
      this.exit(ExitCode.badInput)
    }
    if (isParse) return super.catch(err)
    if (code !== ExitCode.failure || err.name !== 'Error') {
      process.stderr.write(`Error: ${err.message}\n`)
      this.exit(code)
    }
    return super.catch(err)
  }
}
