import {FoobarCommand} from '../../cli/base.js'
import {ExitCode} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {type FirewallStatus, firewallStatus} from '../../components/firewall/status.js'
import {loadInventory} from '../../inventory/index.js'
import {STACK} from '../../components/index.js'
import {sshTransport} from '../../remote/connection.js'

export default class FirewallStatusCommand extends FoobarCommand<typeof FirewallStatusCommand> {
  static summary = 'The live firewall on each host against the inventory; flags drift. Exit 4 when any host drifted.'
  static flags = {...connectFlags, limit: limitFlag}

  async run(): Promise<{hosts: FirewallStatus[]}> {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts)
    const statuses = await firewallStatus(STACK, inv, hosts, {
      concurrency: this.flags.concurrency,
      transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
    })
    if (!this.jsonEnabled()) {
      for (const s of statuses) {
        if (s.error) this.log(`${s.host}: ERROR ${s.error}`)
        else if (s.inSync) this.log(`${s.host}: ${s.backend} in sync`)
        else {
          this.log(`${s.host}: ${s.backend} DRIFT${s.notes?.length ? ` (${s.notes.join(', ')})` : ''}`)
          for (const m of s.missing ?? []) this.log(`  missing: ${m}`)
          for (const m of s.extra ?? []) this.log(`  not in the inventory: ${m}`)
        }
      }
    }
    const result = {hosts: statuses}
    const errors = statuses.filter((s) => s.error)
    if (errors.length > 0) {
      const failed = Object.fromEntries(errors.map((s) => [s.host, s.error!]))
      this.outcome(
        result,
        errors.length === statuses.length ? ExitCode.failure : ExitCode.partial,
        `firewall status failed on ${errors.map((s) => s.host).join(', ')}`,
        {failed, quiet: true},
      )
    }
    const drifted = statuses.filter((s) => !s.inSync)
    if (drifted.length > 0)
      this.outcome(result, ExitCode.changesPending, `firewall drift on ${drifted.map((s) => s.host).join(', ')}`, {quiet: true})
    return result
  }
}
