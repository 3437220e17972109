import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {connectFlags, limitFlag, waitFlag} from '../../cli/run-flags.js'
import {failIfNeeded, runSession} from '../../cli/session.js'
import {STACK} from '../../components/index.js'
import {loadInventory} from '../../inventory/index.js'
import {jsonChanges} from '../../cli/plan-output.js'

export default class FirewallApply extends FoobarCommand<typeof FirewallApply> {
  static summary = 'Apply the firewall: save the live rules, schedule an automatic revert, activate, confirm with a fresh SSH connection.'
  static description =
    'SSH from the admin networks and from the address foobar connects from is always allowed. If a fresh SSH connection fails after the change, the host restores its previous rules on its own after firewall.revert_after seconds (default 90). Exit codes: 0 done (or nothing to do), 1 no selected host succeeded, 2 bad input (nothing changed), 3 some hosts failed or were skipped (the others done), 5 another run holds the lock (named; nothing changed).'
  static flags = {
    ...connectFlags,
    limit: limitFlag,
    wait: waitFlag,
    yes: Flags.boolean({char: 'y', summary: 'Apply without asking (required without a terminal).'}),
    serial: Flags.integer({summary: 'Rolling batches of N hosts; stop at the first batch with a failure.', min: 1}),
  }

  async run() {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK, only: ['firewall']})
    const {report, summary} = await runSession(inv, hosts, {
      waitSeconds: this.flags.wait,
      apply: true,
      json: this.jsonEnabled(),
      yes: this.flags.yes,
      only: ['firewall'],
      verb: 'firewall apply',
      serial: this.flags.serial,
      concurrency: this.flags.concurrency,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      log: (s) => this.log(s),
    })
    const result = {
      summary,
      hosts: report.hosts.map((h) => ({host: h.host, status: h.status, error: h.error, changes: jsonChanges(h.changes)})),
    }
    return this.withResult(result, () => failIfNeeded(summary, hosts.length))
  }
}
