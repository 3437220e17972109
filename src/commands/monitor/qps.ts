import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {ExitCode, UserError} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {qpsChart} from '../../cli/qps-chart.js'
import {type QpsHistory, QpsHistoryReader, QpsReader} from '../../components/monitoring/live.js'
import {parseSince, qpsRange} from '../../components/monitoring/range.js'
import {type QpsReport, parseWindow, qpsReport} from '../../components/monitoring/stats.js'
import {monitoringHost} from '../../components/monitoring/index.js'
import {type Host, type Inventory, loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

const fmt = (n: number | null) => (n === null ? 'n/a (counter reset)' : n.toFixed(2))

/** `--since`: the chart's data (`--json`), one per draw under `--watch`. */
export type QpsChartResult = QpsHistory & {since: string; rateSeconds: number}

export default class MonitorQps extends FoobarCommand<typeof MonitorQps> {
  static summary =
    "Requests per second at the LB (HAProxy's https frontend) and per web server (nginx), over a window; with --since, a chart over time from Prometheus."

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    window: Flags.string({summary: 'How long to count: 10s, 500ms, 1m (without --since).', default: '10s'}),
    since: Flags.string({
      summary: 'Chart requests/s over this much time, from Prometheus on the monitoring host: 15m, 2h, 1d (1m to 15d).',
    }),
    interval: Flags.string({
      summary: 'With --since --watch: redraw the chart this often (10s, 1m; default 15s, the scrape interval).',
      dependsOn: ['since'],
    }),
    watch: Flags.boolean({summary: 'Keep going until interrupted: a line per window, or with --since the chart redrawn.'}),
  }

  async run(): Promise<QpsReport | QpsChartResult> {
    const parse = <T>(f: () => T) => {
      try {
        return f()
      } catch (error) {
        throw new UserError((error as Error).message)
      }
    }
    const since = this.flags.since
    const windowSeconds = parse(() => parseWindow(this.flags.window))
    const sinceSeconds = since === undefined ? undefined : parse(() => parseSince(since))
    const intervalSeconds = parse(() => parseWindow(this.flags.interval ?? '15s', '--interval'))
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    if (!hosts.some((h) => h.roles.includes('lb') || h.roles.includes('web')))
      throw new UserError('no lb or web host selected: nothing serves requests')
    if (since !== undefined) return this.chart(inv, hosts, since, sinceSeconds!, intervalSeconds)
    await this.requireLocalFiles(inv, hosts)
    const reader = await QpsReader.open(hosts, sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}))
    try {
      let before = await reader.read()
      for (;;) {
        await new Promise((r) => setTimeout(r, windowSeconds * 1000))
        const after = await reader.read()
        const pair = <T extends {host: string}>(a: T[], b: T[]) => a.map((x, i) => [x, b[i]!] as [T, T])
        const report = qpsReport(windowSeconds, pair(before.lb, after.lb), pair(before.web, after.web))
        if (!this.flags.watch) {
          this.print(report)
          return report
        }
        // --watch --json: one envelope per line, for piping.
        this.stream(report)
        this.print(report)
        before = after
      }
    } finally {
      reader.close()
    }
  }

  /** `--since`: Prometheus's history on the monitoring host, drawn; `--watch` draws it again every interval. */
  private async chart(
    inv: Inventory,
    hosts: Host[],
    since: string,
    sinceSeconds: number,
    intervalSeconds: number,
  ): Promise<QpsChartResult> {
    const mon = monitoringHost(inv)
    if (!mon)
      throw new UserError(
        `monitor qps --since reads Prometheus on the monitoring host, and ${this.flags.inventory} has none (no host with role monitoring)`,
        [],
        ['Add a host with `roles: [monitoring]` and run `foobar provision`, or leave out --since: live counters over SSH.'],
      )
    // Only the monitoring host is contacted.
    await this.requireLocalFiles(inv, [mon])
    const tty = Boolean(process.stdout.isTTY)
    const columns = tty ? (process.stdout.columns ?? 80) : 80
    const color = tty && !process.env.NO_COLOR
    // About one point per column of the plot (the y labels and axis take ~8).
    const range = qpsRange(sinceSeconds, Math.max(10, columns - 8))
    const reader = await QpsHistoryReader.open(mon, hosts, sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}))
    const warned = new Set<string>()
    try {
      for (let draw = 0; ; draw++) {
        const history = await reader.read(range)
        const result: QpsChartResult = {since, rateSeconds: range.rateSeconds, ...history}
        for (const host of reader.missing(history))
          if (!warned.has(host)) {
            warned.add(host)
            this.warn(`no requests data in Prometheus for ${host} over the last ${since} (see foobar monitor status)`)
          }
        const title = `requests/s, last ${since} to ${new Date(history.end * 1000).toTimeString().slice(0, 8)} (a point every ${range.stepSeconds}s, rate over ${range.rateSeconds}s)`
        const text = qpsChart(history.series, {columns, color, title})
        if (!this.flags.watch) {
          this.say(text)
          if (!history.series.some((s) => s.points.length > 0))
            this.outcome(result, ExitCode.failure, `Prometheus on ${mon.name} has no requests data over the last ${since}`)
          return result
        }
        this.stream(result)
        // In a terminal the chart replaces the previous one; piped, each draw follows the last.
        if (tty && !this.jsonEnabled()) process.stdout.write('\u001B[H\u001B[2J')
        else if (draw > 0) this.say()
        this.say(text)
        await new Promise((r) => setTimeout(r, intervalSeconds * 1000))
      }
    } finally {
      reader.close()
    }
  }

  private print(r: QpsReport): void {
    const stamp = new Date().toISOString().slice(11, 19)
    this.say(`${stamp} requests/s over ${r.windowSeconds}s`)
    for (const l of r.lb) this.say(`  lb   ${l.host.padEnd(12)} ${fmt(l.qps)}`)
    if (r.lb.length > 1) this.say(`  lb   ${'(sum)'.padEnd(12)} ${fmt(r.lbTotal)}`)
    for (const w of r.web) this.say(`  web  ${w.host.padEnd(12)} ${fmt(w.qps)}`)
    if (r.web.length > 1) this.say(`  web  ${'(sum)'.padEnd(12)} ${fmt(r.webTotal)}`)
  }
}
