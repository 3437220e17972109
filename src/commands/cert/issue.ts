import {FoobarCommand} from '../../cli/base.js'
import {certFlags} from '../../cli/cert-flags.js'
import {connectFlags} from '../../cli/run-flags.js'
import {acmePaths, acmeSource} from '../../components/tls/acme.js'
import {type RenewResult, renewCertificate} from '../../components/tls/renew.js'
import {STACK} from '../../components/index.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

export default class CertIssue extends FoobarCommand<typeof CertIssue> {
  static summary =
    'Obtain the site certificate over ACME (HTTP-01 through the LB), deploy it to the LB and web servers, check it is served.'
  static flags = {...connectFlags, ...certFlags}

  async run(): Promise<RenewResult> {
    const inv = await loadInventory(this.flags.inventory)
    const source = acmeSource(inv, this.flags.directory)
    // The tokens go to the web servers, the certificate to the LB and web servers.
    await this.requireLocalFiles(
      inv,
      inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web')),
    )
    const result = await renewCertificate(STACK, inv, source, acmePaths(inv), {
      concurrency: this.flags.concurrency,
      transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
      force: this.flags.force,
      days: this.flags.days,
      lockWaitMs: this.flags['lock-wait'] * 1000,
      step: (s) => this.say(s),
    })
    if (result.renewed) {
      this.say(
        `issued ${inv.site.domain}: serial ${result.certificate!.serial}, expires ${result.certificate!.notAfter.toISOString()}, served by ${result.served!.map((s) => s.host).join(', ')}`,
      )
    } else {
      const kept = `a valid certificate exists (${result.reason}); use --force to replace it`
      this.say(kept)
      this.warn(`nothing issued: ${kept}`, true)
    }
    return result
  }
}
