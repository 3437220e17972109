import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {ExitCode} from '../util/errors.js'
import {connectFlags, limitFlag} from '../cli/run-flags.js'
import {failIfNeeded, runSession} from '../cli/session.js'
import {loadInventory} from '../inventory/index.js'
import {jsonChanges} from '../cli/plan-output.js'
import {STACK, prepareMaterial} from '../components/index.js'
import {pendingMaterial, stateDirPath} from '../components/tls/index.js'

export default class Plan extends FoobarCommand<typeof Plan> {
  static summary = 'Show what provision would change on each host, with diffs. Changes nothing.'
  static description =
    'Exit codes: 0 nothing to do or changes shown, 1 no selected host could be planned, 2 bad input, 3 some hosts could not be planned, 4 with --detailed-exitcode: changes are pending.'
  static examples = [
    '<%= config.bin %> plan -i inventories/lab.yml',
    '<%= config.bin %> plan --detailed-exitcode   # 0 nothing to do, 4 changes pending',
  ]

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    'detailed-exitcode': Flags.boolean({summary: 'Exit 0 when there is nothing to do, 4 when changes are pending.'}),
  }

  async run() {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK})
    const {report, summary} = await runSession(inv, hosts, {
      apply: false,
      json: this.jsonEnabled(),
      yes: true,
      concurrency: this.flags.concurrency,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      log: (s) => this.log(s),
    })
    // plan creates no key material: what is missing is planned as "(new ..., created by provision)".
    const toCreate = pendingMaterial(prepareMaterial(inv))
    if (toCreate.length && !this.jsonEnabled()) this.log(`provision will create ${toCreate.join(', ')} in ${stateDirPath(inv)}`)
    const result = {summary, hosts: report.hosts.map((h) => ({host: h.host, status: h.status, changes: jsonChanges(h.changes)}))}
    this.withResult(result, () => failIfNeeded(summary, hosts.length))
    if (this.flags['detailed-exitcode'] && summary.pending > 0) {
      this.outcome(result, ExitCode.changesPending, `changes pending on ${summary.pending} of ${hosts.length} hosts`, {quiet: true})
    }
    return result
  }
}
