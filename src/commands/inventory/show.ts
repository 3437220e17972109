import {FoobarCommand} from '../../cli/base.js'
import {limitFlag} from '../../cli/run-flags.js'
import {type Host, loadInventory, sshPort, sshUser} from '../../inventory/index.js'

export default class InventoryShow extends FoobarCommand<typeof InventoryShow> {
  static summary = 'Print the resolved hosts (host > role > top level > defaults). Secrets are only references.'
  static flags = {limit: limitFlag}

  async run(): Promise<{site: unknown; mysql: unknown; hosts: Host[]}> {
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    if (!this.jsonEnabled()) {
      this.log(`site: ${inv.site.domain}${inv.site.aliases.length ? ` (+ ${inv.site.aliases.join(', ')})` : ''}`)
      for (const h of hosts) {
        this.log(
          `\n${h.name}  ${h.address}  roles: ${h.roles.join(', ')}${h.db ? `  (mysql ${h.db.role}, server_id ${h.db.serverId})` : ''}`,
        )
        // What the inventory leaves unset, ssh_config may set when connecting (else the default shown).
        const unset = [h.ssh.user === undefined && 'user', h.ssh.port === undefined && 'port'].filter(Boolean)
        this.log(
          `  ssh: ${sshUser(h)}@${h.address}:${sshPort(h)}${h.ssh.sudo ? ' (sudo)' : ''}${h.ssh.jumpHost ? ` via ${h.ssh.jumpHost}` : ''}${unset.length ? ` (${unset.join(' and ')}: ssh_config's if it sets them, else this default)` : ''}`,
        )
        this.log(`  firewall: ${h.firewall.backend}, ssh from ${h.firewall.adminCidrs.join(', ')}`)
        this.log(
          `  tls: ${h.tls.profile}, certificate ${h.tls.source.type}, HSTS ${h.tls.hsts.enabled ? `max-age=${h.tls.hsts.maxAge}` : 'off'}`,
        )
        if (h.roles.includes('lb'))
          this.log(`  lb: ${h.lb.balance}, health ${h.lb.healthCheck}, re-encrypt ${h.lb.reencrypt ? 'on' : 'OFF'}`)
        this.log(`  monitoring: ${h.monitoring.enabled ? 'on' : 'off'}${h.apt.proxy ? `; apt proxy ${h.apt.proxy}` : ''}`)
      }
    }
    // Secrets appear only as references ({env} / {file}); the values are read at apply time and never printed.
    return {site: inv.site, mysql: inv.mysql, hosts}
  }
}
