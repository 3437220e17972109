import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {UserError} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {QpsReader} from '../../components/monitoring/live.js'
import {type QpsReport, parseWindow, qpsReport} from '../../components/monitoring/stats.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

const fmt = (n: number | null) => (n === null ? 'n/a (counter reset)' : n.toFixed(2))

export default class MonitorQps extends FoobarCommand<typeof MonitorQps> {
  static summary = "Requests per second at the LB (HAProxy's https frontend) and per web server (nginx), over a window."

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    window: Flags.string({summary: 'How long to count: 10s, 500ms, 1m.', default: '10s'}),
    watch: Flags.boolean({summary: 'Keep printing one line per window until interrupted.'}),
  }

  async run(): Promise<QpsReport> {
    let windowSeconds: number
    try {
      windowSeconds = parseWindow(this.flags.window)
    } catch (error) {
      throw new UserError((error as Error).message)
    }
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    if (!hosts.some((h) => h.roles.includes('lb') || h.roles.includes('web')))
      throw new UserError('no lb or web host selected: nothing serves requests')
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

  private print(r: QpsReport): void {
    const stamp = new Date().toISOString().slice(11, 19)
    this.say(`${stamp} requests/s over ${r.windowSeconds}s`)
    for (const l of r.lb) this.say(`  lb   ${l.host.padEnd(12)} ${fmt(l.qps)}`)
    if (r.lb.length > 1) this.say(`  lb   ${'(sum)'.padEnd(12)} ${fmt(r.lbTotal)}`)
    for (const w of r.web) this.say(`  web  ${w.host.padEnd(12)} ${fmt(w.qps)}`)
    if (r.web.length > 1) this.say(`  web  ${'(sum)'.padEnd(12)} ${fmt(r.webTotal)}`)
  }
}
