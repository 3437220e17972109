import {FoobarCommand} from '../../cli/base.js'
import {loadInventory} from '../../inventory/index.js'
import {checkTlsSource} from '../../components/tls/index.js'

export default class InventoryCheck extends FoobarCommand<typeof InventoryCheck> {
  static summary = 'Validate the inventory: every problem at once, with file:line:column. Exit 2 if invalid.'
  static examples = ['<%= config.bin %> inventory check -i inventories/foobar.yml']

  async run(): Promise<{file: string; valid: true; hosts: number}> {
    const inv = await loadInventory(this.flags.inventory)
    // tls.source files: PEM, a certificate chain and its matching key, names covering the site (reads, creates nothing).
    checkTlsSource(inv)
    this.say(
      `${this.flags.inventory}: valid (${inv.hosts.length} hosts: ${inv.hosts.map((h) => `${h.name} [${h.roles.join(',')}]`).join(', ')})`,
    )
    return {file: inv.file, valid: true, hosts: inv.hosts.length}
  }
}
