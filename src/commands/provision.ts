import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {connectFlags, limitFlag, waitFlag} from '../cli/run-flags.js'
import {failIfNeeded, runSession} from '../cli/session.js'
import {loadInventory} from '../inventory/index.js'
import {jsonChanges} from '../cli/plan-output.js'
import {STACK} from '../components/index.js'
import {createTlsMaterial} from '../components/tls/index.js'
import {sshTransport} from '../remote/connection.js'

export default class Provision extends FoobarCommand<typeof Provision> {
  static summary = 'Bring every host to the inventory: packages, configs (validated, atomic), services; reload what changed.'
  static description =
    'Exit codes: 0 done (or nothing to do), 1 no selected host succeeded, 2 bad input (nothing changed), 3 some hosts failed or were skipped (the others done), 5 another run holds the lock (named; nothing changed).'
  static examples = ['<%= config.bin %> provision -i inventories/lab.yml --yes', '<%= config.bin %> provision --limit web --serial 1']

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    wait: waitFlag,
    yes: Flags.boolean({char: 'y', summary: 'Apply without asking (required without a terminal).'}),
    'dry-run': Flags.boolean({summary: 'Only show the plan (same as `foobar plan`).'}),
    serial: Flags.integer({summary: 'Rolling batches of N hosts; stop at the first batch with a failure.', min: 1}),
  }

  async run() {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK})
    const apply = !this.flags['dry-run']
    const {report, summary} = await runSession(inv, hosts, {
      waitSeconds: this.flags.wait,
      // Key material is created here (not by plan), under the run's lock: the internal CA, leaves, the placeholder;
      // never a new CA over hosts that already carry one (exit 2, nothing changed). The run reads what this created.
      prepare: async () => {
        await createTlsMaterial(STACK, inv, {
          transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
          concurrency: this.flags.concurrency,
        })
      },
      apply,
      json: this.jsonEnabled(),
      yes: this.flags.yes,
      concurrency: this.flags.concurrency,
      serial: this.flags.serial,
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
