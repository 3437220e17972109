import {FoobarCommand} from '../../cli/base.js'
import {ExitCode} from '../../util/errors.js'
import {connectFlags} from '../../cli/run-flags.js'
import {acmePaths, acmeSource, readCurrent} from '../../components/tls/acme.js'
import {normaliseSerial, servedSerials, type Served} from '../../components/tls/renew.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

export default class CertStatus extends FoobarCommand<typeof CertStatus> {
  static summary = 'Per name: serial, issuer, expiry, days left, and the serial every LB and web server serves (checked live).'
  static description = 'Exit 0 when every host serves the current certificate, 1 when there is none, 3 when some host serves another one.'
  static flags = {...connectFlags}

  async run() {
    const inv = await loadInventory(this.flags.inventory)
    acmeSource(inv)
    const cert = readCurrent(acmePaths(inv))
    // What the web servers serve is read over SSH (the LBs' over TLS only).
    await this.requireLocalFiles(
      inv,
      inv.hosts.filter((h) => h.roles.includes('web')),
    )
    const served: Served[] = await servedSerials(inv, {transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']})})
    const daysLeft = cert ? Math.floor((cert.notAfter.getTime() - Date.now()) / 86_400_000) : undefined
    const consistent = cert !== undefined && served.every((s) => s.serial && normaliseSerial(s.serial) === normaliseSerial(cert.serial))
    const names = [inv.site.domain, ...inv.site.aliases].map((name) => ({
      name,
      covered: cert?.names.includes(name) ?? false,
      serial: cert?.serial,
      issuer: cert?.issuer,
      notAfter: cert?.notAfter.toISOString(),
      daysLeft,
    }))
    const result = {names, served, consistent}
    if (!this.jsonEnabled()) {
      for (const n of names)
        this.log(
          `${n.name}: ${cert ? `serial ${n.serial}, issuer ${n.issuer}, expires ${n.notAfter} (${n.daysLeft} days left)${n.covered ? '' : ' NOT ON THE CERTIFICATE'}` : 'no certificate (run foobar cert issue)'}`,
        )
      for (const s of served) {
        const same = cert && s.serial && normaliseSerial(s.serial) === normaliseSerial(cert.serial)
        this.log(`  ${s.host}: ${s.error ? `ERROR ${s.error}` : `serves ${s.serial}${same ? '' : ' (NOT the current certificate)'}`}`)
      }
      this.log(consistent ? 'every host serves the current certificate' : 'hosts disagree or no certificate')
    }
    if (!cert) this.outcome(result, ExitCode.failure, 'no certificate: run foobar cert issue', {quiet: true})
    if (!consistent) {
      const other = served.filter((s) => !s.serial || normaliseSerial(s.serial) !== normaliseSerial(cert.serial))
      const failed = Object.fromEntries(other.map((s) => [s.host, s.error ?? `serves ${s.serial}, not the current ${cert.serial}`]))
      this.outcome(result, ExitCode.partial, `not serving the current certificate: ${other.map((s) => s.host).join(', ')}`, {
        failed,
        quiet: true,
      })
    }
    return result
  }
}
