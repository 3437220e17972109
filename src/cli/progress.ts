import type {Listr, ListrTaskWrapper} from 'listr2'
import type {HostResult} from '../engine/run.js'
import {underHost} from './plan-output.js'

type Task = ListrTaskWrapper<unknown, any, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** How a host's line ends: its title (done), the error listr prints after its name (failed), or why it was skipped. */
export interface HostEnding {
  status: 'done' | 'failed' | 'skipped'
  text: string
}

/** A run's host result as its line's ending. */
export function endingOf(r: HostResult): HostEnding {
  if (r.status === 'failed') return {status: 'failed', text: underHost(r.host, r.error)}
  return {status: r.status === 'skipped' ? 'skipped' : 'done', text: describeResult(r)}
}

/**
 * A listr2 task per host, fed by the engine's progress events, drawn on stderr (stdout carries the plan and the
 * JSON). Plain lines without a TTY (cron, CI); nothing at all under --json. It never outlives the work: a result
 * that arrives before its task started is kept for it, and `abort` ends every task when the run itself failed.
 */
export class HostProgress {
  /** listr2 is loaded only when something is drawn (not under --json): it is not on the CLI's start path. */
  static async open(hosts: string[], mode: 'tty' | 'plain' | 'silent'): Promise<HostProgress> {
    return new HostProgress(hosts, mode, mode === 'silent' ? undefined : await import('listr2'))
  }

  private readonly tasks = new Map<string, Task>()
  /** Steps said before listr started the host's task: shown when it starts (plain lines are a log: none lost). */
  private readonly early = new Map<string, string[]>()
  private readonly done = new Map<string, (r: HostEnding) => void>()
  private readonly results = new Map<string, HostEnding>()
  private readonly listr?: Listr<unknown, any, any> // eslint-disable-line @typescript-eslint/no-explicit-any
  private running?: Promise<unknown>

  private readonly plain: boolean

  private constructor(
    private readonly hosts: string[],
    mode: 'tty' | 'plain' | 'silent',
    lib: typeof import('listr2') | undefined,
  ) {
    this.plain = mode === 'plain'
    if (mode === 'silent' || !lib) return
    /** Both of listr2's streams on stderr. */
    const toStderr = () => new lib.ProcessOutput(process.stderr, process.stderr)
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.listr = new lib.Listr<unknown, any, any>(
      hosts.map((name) => ({
        title: name,
        task: async (_ctx: unknown, task: Task) => {
          this.tasks.set(name, task)
          for (const text of this.early.get(name) ?? []) task.output = text
          this.early.delete(name)
          const result = this.results.get(name) ?? (await new Promise<HostEnding>((resolve) => this.done.set(name, resolve)))
          // A failure is said once: listr prints the error after the host's name.
          if (result.status === 'failed') throw new Error(result.text)
          task.title = `${name}: ${result.text}`
          if (result.status === 'skipped') task.skip(task.title)
        },
      })),
      {
        concurrent: true,
        exitOnError: false,
        collectErrors: 'minimal',
        renderer: mode === 'tty' ? 'default' : 'simple',
        rendererOptions: {
          collapseErrors: false,
          processOutput: toStderr(),
          logger: new lib.ListrLogger({useIcons: true, processOutput: toStderr()}),
        } as never,
      },
    )
  }

  start(): void {
    this.running = this.listr?.run().catch(() => undefined)
  }

  step(host: string, text: string): void {
    const t = this.tasks.get(host)
    // Plain lines carry no tree, so each says which host it is about.
    const line = this.plain ? `${host}: ${text}` : text
    if (t) t.output = line
    else if (this.listr) this.early.set(host, this.plain ? [...(this.early.get(host) ?? []), line] : [line])
  }

  finish(host: string, result: HostResult): void {
    this.end(host, endingOf(result))
  }

  end(host: string, ending: HostEnding): void {
    if (this.results.has(host)) return
    this.results.set(host, ending)
    this.done.get(host)?.(ending)
  }

  /** The run failed as a whole (bad input found late, a bug): every host not finished ends with it. */
  async abort(error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error)
    for (const host of this.hosts) {
      if (!this.results.has(host)) this.finish(host, {host, status: 'skipped', changes: [], error: `not run: ${message}`, durationMs: 0})
    }
    await this.close()
  }

  async close(): Promise<void> {
    await this.running
  }
}

export function describeResult(r: HostResult): string {
  switch (r.status) {
    case 'unchanged':
      return 'ok, no changes'
    case 'changed':
      return `changed (${r.changes.length} changes)`
    case 'pending':
      return `${r.changes.length} changes pending`
    case 'skipped':
      return `skipped (${underHost(r.host, r.error)})`
    case 'failed':
      return `FAILED: ${underHost(r.host, r.error)}`
  }
}
