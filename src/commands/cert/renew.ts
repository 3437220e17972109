import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {certFlags} from '../../cli/cert-flags.js'
import {connectFlags} from '../../cli/run-flags.js'
import {acmePaths, acmeSource} from '../../components/tls/acme.js'
import {type RenewResult, renewCertificate} from '../../components/tls/renew.js'
import {STACK} from '../../components/index.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

export default class CertRenew extends FoobarCommand<typeof CertRenew> {
  static summary = 'Renew the site certificate when due, deploy it and check every host serves it. Silent when nothing is due.'
  static description =
    'Made for cron: no output and exit 0 when nothing is due; exit 0 after a successful renewal; non-zero on failure, with the old certificate still deployed.'
  static examples = ['<%= config.bin %> cert renew -i inventories/foobar.yml --random-delay 3600']
  static flags = {
    ...connectFlags,
    ...certFlags,
    'random-delay': Flags.integer({summary: 'Sleep a random 0..N seconds first (spreads scheduled runs).', default: 0, min: 0}),
  }

  async run(): Promise<RenewResult> {
    const inv = await loadInventory(this.flags.inventory)
    const source = acmeSource(inv, this.flags.directory)
    const paths = acmePaths(inv)
    // The tokens go to the web servers, the certificate to the LB and web servers.
    await this.requireLocalFiles(
      inv,
      inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web')),
    )
    if (this.flags['random-delay'] > 0) await new Promise((r) => setTimeout(r, Math.random() * this.flags['random-delay'] * 1000))
    const result = await renewCertificate(STACK, inv, source, paths, {
      concurrency: this.flags.concurrency,
      transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
      force: this.flags.force,
      days: this.flags.days,
      lockWaitMs: this.flags['lock-wait'] * 1000,
    })
    if (result.renewed)
      this.say(
        `renewed ${inv.site.domain}: serial ${result.certificate!.serial}, expires ${result.certificate!.notAfter.toISOString()}, served by ${result.served!.map((s) => s.host).join(', ')} (${result.reason})`,
      )
    return result
  }
}
