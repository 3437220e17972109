import type {CheckResult, VerifyEvent} from '../engine/verify.js'
import {HostProgress} from './progress.js'

type Mode = 'tty' | 'plain' | 'silent'

interface HostState {
  total?: number
  done: number
  running: Map<string, {t0: number; text?: string}>
  took: Array<{check: string; ms: number}>
  /** Plain lines: when a check's progress was last printed. */
  said: Map<string, number>
}

/** Seconds as people read them: "0.4 s", "12 s", "312 s". */
export function secs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`
}

/** In plain output, a long check's progress at most this often (a log, not an animation). */
const PLAIN_EVERY_MS = 15_000
/** Checks shown on a host's line while they run (the longest-running first). */
const SHOWN = 3

/**
 * verify's progress on stderr: a line per host (listr2, like provision's) saying which checks are running and for
 * how long, with a long check's own progress (Lynis' test group), redrawn every second on a terminal; when the
 * host is done, how many passed and its slowest checks. Without a terminal, plain lines: each check with its
 * result and time, a long check's progress every 15 s. Nothing under --json. stdout (the table, the JSON) is not
 * touched.
 */
export class VerifyProgress {
  static async open(hosts: string[], mode: Mode, now: () => number = Date.now): Promise<VerifyProgress> {
    return new VerifyProgress(await HostProgress.open(hosts, mode), mode, now)
  }

  private readonly state = new Map<string, HostState>()
  private ticker?: ReturnType<typeof setInterval>

  private constructor(
    private readonly lines: HostProgress,
    private readonly mode: Mode,
    private readonly now: () => number,
  ) {}

  start(): void {
    this.lines.start()
    if (this.mode === 'tty') {
      // The seconds of the running checks move on their own.
      this.ticker = setInterval(() => {
        for (const [host, s] of this.state) if (s.running.size) this.draw(host)
      }, 1000)
      this.ticker.unref()
    }
  }

  private host(name: string): HostState {
    let s = this.state.get(name)
    if (!s) this.state.set(name, (s = {done: 0, running: new Map(), took: [], said: new Map()}))
    return s
  }

  onEvent(e: VerifyEvent): void {
    if (this.mode === 'silent') return
    const s = this.host(e.host)
    switch (e.kind) {
      case 'host':
        s.total = e.checks.length
        if (this.mode === 'plain') this.lines.step(e.host, `${e.checks.length} checks`)
        break
      case 'start':
        s.running.set(e.check, {t0: this.now()})
        break
      case 'progress': {
        const r = s.running.get(e.check)
        if (r) r.text = e.text
        if (this.mode === 'plain') {
          const last = s.said.get(e.check)
          if (last === undefined || this.now() - last >= PLAIN_EVERY_MS) {
            s.said.set(e.check, this.now())
            this.lines.step(e.host, `${e.check}: ${e.text} (${secs(this.now() - (r?.t0 ?? this.now()))})`)
          }
          return
        }
        break
      }
      case 'retry':
        if (this.mode === 'plain' && !s.said.has(`retry ${e.check}`)) {
          s.said.set(`retry ${e.check}`, this.now())
          this.lines.step(e.host, `${e.check}: ${e.detail}; trying again until it passes or the timeout runs out`)
        }
        return
      case 'done':
        s.running.delete(e.check)
        s.done++
        s.took.push({check: e.check, ms: e.ms})
        if (this.mode === 'plain')
          this.lines.step(e.host, `${e.check}: ${verdict(e.result)} in ${secs(e.ms)}${e.result.ok ? '' : `: ${e.result.detail}`}`)
        break
      case 'hostDone':
        this.lines.end(e.host, hostEnding(e.results, e.ms, s.took))
        return
    }
    if (this.mode === 'tty') this.draw(e.host)
  }

  private draw(host: string): void {
    const s = this.host(host)
    const running = [...s.running].map(([check, r]) => ({check, ...r}))
    this.lines.step(host, runningLine(s.done, s.total, running, this.now()))
  }

  /** Every host not finished ends (the run failed as a whole). */
  async abort(error: unknown): Promise<void> {
    this.stop()
    await this.lines.abort(error)
  }

  async close(): Promise<void> {
    this.stop()
    await this.lines.close()
  }

  private stop(): void {
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = undefined
  }
}

/** A host's line on a terminal: checks done, and the longest-running ones with their seconds and progress. */
export function runningLine(
  done: number,
  total: number | undefined,
  running: Array<{check: string; t0: number; text?: string}>,
  now: number,
): string {
  const longest = [...running].sort((a, b) => a.t0 - b.t0)
  const shown = longest
    .slice(0, SHOWN)
    .map((r) => `${r.check} ${secs(now - r.t0)}${r.text ? ` (${r.text})` : ''}`)
    .join(', ')
  const more = longest.length > SHOWN ? ` +${longest.length - SHOWN} more` : ''
  return `${done}${total ? `/${total}` : ''} checks done${shown ? `; running: ${shown}${more}` : ''}`
}

const verdict = (r: CheckResult) => (r.skipped ? 'skip' : r.ok ? 'pass' : 'FAIL')

/** A host's line when its checks are done: the counts, its time, its slowest checks (a second or more). */
export function hostEnding(
  results: CheckResult[],
  ms: number,
  took: Array<{check: string; ms: number}>,
): {status: 'done' | 'failed'; text: string} {
  const failed = results.filter((r) => !r.ok)
  const skipped = results.filter((r) => r.skipped).length
  const passed = results.length - failed.length - skipped
  const slow = [...took]
    .sort((a, b) => b.ms - a.ms)
    .filter((t) => t.ms >= 1000)
    .slice(0, 3)
    .map((t) => `${t.check} ${secs(t.ms)}`)
  const timing = `in ${secs(ms)}${slow.length ? ` (slowest: ${slow.join(', ')})` : ''}`
  const counts = `${passed} passed${failed.length ? `, ${failed.length} failed` : ''}${skipped ? `, ${skipped} skipped` : ''}`
  if (failed.length) return {status: 'failed', text: `${counts} (${failed.map((f) => f.check).join(', ')}) ${timing}`}
  return {status: 'done', text: `${counts} ${timing}`}
}
