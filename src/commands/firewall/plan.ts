import {FoobarCommand} from '../../cli/base.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {failIfNeeded, runSession} from '../../cli/session.js'
import {STACK} from '../../components/index.js'
import {loadInventory} from '../../inventory/index.js'
import {jsonChanges} from '../../cli/plan-output.js'

export default class FirewallPlan extends FoobarCommand<typeof FirewallPlan> {
  static summary = 'Show the firewall changes per host (rules files and live rules against the inventory). Changes nothing.'
  static flags = {...connectFlags, limit: limitFlag}

  async run() {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK, only: ['firewall']})
    const {report, summary} = await runSession(inv, hosts, {
      apply: false,
      json: this.jsonEnabled(),
      yes: true,
      only: ['firewall'],
      verb: 'firewall plan',
      concurrency: this.flags.concurrency,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      log: (s) => this.log(s),
    })
    const result = {summary, hosts: report.hosts.map((h) => ({host: h.host, status: h.status, changes: jsonChanges(h.changes)}))}
    return this.withResult(result, () => failIfNeeded(summary, hosts.length))
  }
}
