import {Listr, type ListrTaskWrapper} from 'listr2'
import type {HostResult} from '../engine/run.js'

type Task = ListrTaskWrapper<unknown, any, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A listr2 task per host, fed by the engine's progress events. Plain lines without a TTY (cron, CI); nothing at
 * all under --json.
 */
export class HostProgress {
  private readonly tasks = new Map<string, Task>()
  private readonly done = new Map<string, (r: HostResult) => void>()
  private readonly listr?: Listr<unknown, any, any> // eslint-disable-line @typescript-eslint/no-explicit-any
  private running?: Promise<unknown>

  private readonly plain: boolean

  constructor(hosts: string[], mode: 'tty' | 'plain' | 'silent') {
    this.plain = mode === 'plain'
    if (mode === 'silent') return
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.listr = new Listr<unknown, any, any>(
      hosts.map((name) => ({
        title: name,
        task: async (_ctx: unknown, task: Task) => {
          this.tasks.set(name, task)
          const result = await new Promise<HostResult>((resolve) => this.done.set(name, resolve))
          task.title = `${name}: ${describeResult(result)}`
          if (result.status === 'failed') throw new Error(`${name}: ${result.error}`)
          if (result.status === 'skipped') task.skip(`${name}: ${result.error}`)
        },
      })),
      {
        concurrent: true,
        exitOnError: false,
        collectErrors: 'minimal',
        renderer: mode === 'tty' ? 'default' : 'simple',
        rendererOptions: {collapseErrors: false} as never,
      },
    )
  }

  start(): void {
    this.running = this.listr?.run().catch(() => undefined)
  }

  step(host: string, text: string): void {
    const t = this.tasks.get(host)
    // Plain lines carry no tree, so each says which host it is about.
    if (t) t.output = this.plain ? `${host}: ${text}` : text
  }

  finish(host: string, result: HostResult): void {
    this.done.get(host)?.(result)
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
      return `skipped (${r.error})`
    case 'failed':
      return `FAILED: ${r.error}`
  }
}
